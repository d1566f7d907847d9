"""Run the benchmark suite: `make bench` (or `python -m bench [--quick]`);
`python -m bench soak` runs the reliability soak instead (bench/soak.py).

Prints a table and writes JSON. Every figure comes with a baseline measured
in the same run on the same machine, and the ratio between them.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
import traceback
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ml.data import make_data
from services.common.config import usable_cores

from .baselines import bare_fit, bare_tiny_fits_per_second, jetstream_round_trips
from .fit_cache import measure_example_2
from .measure import Figure, bare_fit_seconds, percentile
from .peers.base import Peer
from .peers.fityard_peer import FityardPeer
from .tracing_cost import measure_tracing_cost
from .transfer import MiB, make_parquet, measure_transfer


@dataclass(frozen=True)
class Sizes:
    dispatch_fits: int
    seed_rows: int
    concurrent_fits: int
    transfer_bytes: tuple[int, ...]
    scale_jobs: int
    tracing_rounds: int  # alternating off/on rounds of the tracing cost
    long_rounds: int  # boosting rounds of the long fit a toy fit is measured behind


FULL = Sizes(200, 100_000, 20, (64 * MiB, 1024 * MiB), 1000, 5, 600)
QUICK = Sizes(10, 4_000, 4, (8 * MiB,), 40, 2, 3000)


def machine() -> dict:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = int(Path("/proc/meminfo").read_text().split()[1]) * 1024
    return {
        "cpu": cpu,
        "cores": usable_cores(),
        "memory_gib": round(mem / 1024**3, 1),
        "python": platform.python_version(),
        "os": platform.platform(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class Run:
    """Collects figures and failures, and says what it is doing."""

    def __init__(self) -> None:
        self.figures: list[Figure] = []
        self.failures: list[str] = []
        self.started = time.monotonic()

    def say(self, text: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {text}", file=sys.stderr, flush=True)

    def attempt(self, what: str, action) -> None:
        """Run one measurement; a peer that cannot run is reported, not fatal."""
        self.say(what)
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - keep measuring the rest
            traceback.print_exc()
            self.failures.append(f"{what}: {type(exc).__name__}: {exc}")


def measure_peer(
    run: Run,
    peer: Peer,
    files: dict,
    sizes: Sizes,
    *,
    dispatch=True,
    fit=True,
    concurrency=True,
    toy=True,
    baselines: dict,
) -> None:
    with peer:
        if dispatch:
            # RQ forks a work horse per job that imports pandas and sklearn
            # afresh (about 1.6 s a job here): fewer samples keep the suite short.
            fits = (
                sizes.dispatch_fits
                if not peer.name.startswith("RQ")
                else max(10, sizes.dispatch_fits // 5)
            )

            def _dispatch():
                latencies = [s * 1000 for s in peer.dispatch_latencies(files["tiny"], fits)]
                for p in (50, 95):
                    run.figures.append(
                        Figure(
                            f"dispatch latency p{p}",
                            peer.name,
                            percentile(latencies, p),
                            "ms",
                            baselines[f"jetstream_p{p}_ms"],
                            "JetStream publish -> fetch -> ack",
                            "p50 <= 3 ms, then below Ray"
                            if peer.name.startswith("fityard") and p == 50
                            else "",
                            met=percentile(latencies, p) <= 3
                            if peer.name.startswith("fityard") and p == 50
                            else None,
                        )
                    )

            run.attempt(f"{peer.name}: dispatch latency over {fits} tiny fits", _dispatch)
        if fit:

            def _fit():
                peer.fit_seconds(files["seed"])  # warm up: first job pays one-off costs
                # Bare and peer fits alternate, so both see the same machine
                # (fit times drift by +-20 % on a shared VM); medians of 5.
                bare, system = [], []
                for _ in range(5):
                    bare.append(bare_fit_seconds(files["seed"]))
                    system.append(peer.fit_seconds(files["seed"]))
                seconds, baseline = statistics.median(system), statistics.median(bare)
                is_fityard = peer.name.startswith("fityard")
                run.figures.append(
                    Figure(
                        "fit overhead (seed fit end to end)",
                        peer.name,
                        seconds,
                        "s",
                        baseline,
                        "bare in-process fit, alternating",
                        "<= 1.10" if is_fityard else "",
                        met=seconds / baseline <= 1.10 if is_fityard else None,
                    )
                )

            run.attempt(f"{peer.name}: seed fit end to end", _fit)
        if concurrency:

            def _concurrency():
                seconds = peer.makespan(files["seed"], sizes.concurrent_fits)
                is_default = peer.name == "fityard (defaults)"
                baseline = sizes.concurrent_fits * baselines["bare_fit_s"]
                run.figures.append(
                    Figure(
                        f"concurrency: {sizes.concurrent_fits} fits at once (makespan)",
                        peer.name,
                        seconds,
                        "s",
                        baseline,
                        f"{sizes.concurrent_fits} sequential bare fits",
                        "<= 0.80" if is_default else "",
                        met=seconds / baseline <= 0.80 if is_default else None,
                    )
                )

            run.attempt(f"{peer.name}: {sizes.concurrent_fits} fits at once", _concurrency)
        if toy:

            def _toy():
                # A toy fit alone, then behind a long fit that is running;
                # fityard's three times (median, spread), the peers once.
                is_fityard = peer.name.startswith("fityard")
                long_params = {"max_iter": sizes.long_rounds, "early_stopping": False}
                alone, behind = [], []
                for _ in range(3 if is_fityard else 1):
                    alone.append(peer.fit_seconds(files["tiny"]))
                    behind.append(peer.toy_behind_long(files["seed"], long_params, files["tiny"]))
                value, baseline = statistics.median(behind), statistics.median(alone)
                ratios = [b / a for a, b in zip(alone, behind, strict=True)]
                run.figures.append(
                    Figure(
                        "toy fit behind a long fit (end to end)",
                        peer.name,
                        value,
                        "s",
                        baseline,
                        "the same toy fit alone",
                        "<= 3" if is_fityard else "",
                        met=value / baseline <= 3 if is_fityard else None,
                        extra={
                            "alone": alone,
                            "behind": behind,
                            "spread": [min(ratios), max(ratios)],
                        },
                    )
                )

            run.attempt(f"{peer.name}: a toy fit behind a long fit", _toy)


def run_fityard(
    run: Run, files: dict, sizes: Sizes, baselines: dict, work: Path, transfer_files: list[Path]
) -> None:
    from .scale import measure_scale

    peer = FityardPeer(work / "fityard-defaults")
    with peer:
        measure_peer(run, _Borrowed(peer), files, sizes, baselines=baselines)
        run.attempt(
            f"fityard (defaults): {sizes.scale_jobs} tiny fits at once",
            lambda: run.figures.append(
                measure_scale(
                    peer.client,
                    peer.dataset(files["tiny"]),
                    sizes.scale_jobs,
                    baselines["bare_tiny_per_s"],
                )
            ),
        )
        run.attempt(
            f"fityard (defaults): example_2, {sizes.concurrent_fits} fits of one file, cached and not",
            lambda: run.figures.append(
                measure_example_2(peer.client, peer.dataset(files["seed"]), sizes.concurrent_fits)
            ),
        )
        store = _store_of(peer.stack.data_dir / "objects")
        for path in transfer_files:
            run.attempt(
                f"fityard (defaults): transfer {path.stat().st_size // MiB} MiB, local store",
                lambda path=path: run.figures.extend(
                    measure_transfer(
                        peer.client, store, _pid(peer.stack, "gateway"), "local", path, work
                    )
                ),
            )
    if usable_cores() != 1:
        measure_peer(
            run,
            FityardPeer(work / "fityard-1", trainers=1),
            files,
            sizes,
            dispatch=False,
            fit=False,
            toy=False,
            baselines=baselines,
        )
    if usable_cores() != 2:
        measure_peer(
            run,
            FityardPeer(work / "fityard-2", trainers=2),
            files,
            sizes,
            dispatch=False,
            fit=False,
            toy=False,
            baselines=baselines,
        )
    else:
        run.say("fityard with 2 trainers is the default on this 2-core machine: measured above")


def run_fityard_s3(run: Run, work: Path, transfer_files: list[Path]) -> None:
    from services.common.storage import open_store
    from tools.s3server import MotoS3Server, storage_config_for

    with MotoS3Server() as s3:
        config = storage_config_for(s3.endpoint, f"bench-{uuid.uuid4().hex[:8]}")
        # The services keep their default part size: the transfer measured is
        # the one a deployment gets.
        env = {
            "FITYARD_S3_ENDPOINT": config.endpoint,
            "FITYARD_S3_ACCESS_KEY": config.access_key,
            "FITYARD_S3_SECRET_KEY": config.secret_key,
            "FITYARD_S3_BUCKET": config.bucket,
        }
        store = open_store(config)
        from fityard import Client
        from services.embedded import EmbeddedStack

        with (
            EmbeddedStack(work / "fityard-s3", storage="s3", env=env) as stack,
            Client(stack.address) as client,
        ):
            store.ensure_ready()
            for path in transfer_files:
                run.attempt(
                    f"fityard: transfer {path.stat().st_size // MiB} MiB, S3 store (moto)",
                    lambda path=path: run.figures.extend(
                        measure_transfer(
                            client, store, _pid(stack, "gateway"), "S3 (moto)", path, work
                        )
                    ),
                )


class _Borrowed(Peer):
    """A started peer lent to measure_peer without stopping it afterwards."""

    def __init__(self, peer: Peer):
        self.peer = peer
        self.name = peer.name

    def start(self):
        return self

    def stop(self):
        pass

    def dispatch_latencies(self, train_path, n):
        return self.peer.dispatch_latencies(train_path, n)

    def fit_seconds(self, train_path):
        return self.peer.fit_seconds(train_path)

    def makespan(self, train_path, jobs):
        return self.peer.makespan(train_path, jobs)

    def toy_behind_long(self, long_path, long_params, toy_path):
        return self.peer.toy_behind_long(long_path, long_params, toy_path)


def _pid(stack, name: str) -> int:
    return stack.pid(name)


def _store_of(root: Path):
    from services.common.config import StorageConfig
    from services.common.storage import open_store

    return open_store(StorageConfig(backend="local", root=root))


def run_peers(run: Run, files: dict, sizes: Sizes, baselines: dict, work: Path) -> None:
    try:
        from .peers.rq_peer import RQPeer
    except ImportError as exc:
        run.failures.append(
            f"RQ not measured: {exc} (run bench/setup.sh and install the bench extra)"
        )
    else:
        measure_peer(run, RQPeer(1, work / "rq-1"), files, sizes, baselines=baselines)
        measure_peer(
            run,
            RQPeer(2, work / "rq-2"),
            files,
            sizes,
            dispatch=False,
            fit=False,
            toy=False,
            baselines=baselines,
        )
    try:
        from .peers.ray_peer import RayPeer
    except ImportError as exc:
        run.failures.append(f"Ray not measured: {exc} (install the bench extra)")
    else:
        measure_peer(run, RayPeer(), files, sizes, baselines=baselines)


def table(figures: list[Figure]) -> str:
    rows = [["benchmark", "system", "figure", "baseline", "ratio", "goal", "met"]]
    for f in figures:
        rows.append(
            [
                f.benchmark,
                f.system,
                f"{f.value:.3g} {f.unit}",
                f"{f.baseline:.3g} {f.unit} ({f.baseline_name})",
                f"{f.ratio:.2f}",
                f.goal,
                {True: "yes", False: "NO", None: ""}[f.met],
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["soak"]:  # the reliability soak: python -m bench soak --help
        from .soak import main as soak

        return soak(argv[1:])
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        epilog="python -m bench soak [--jobs N] [--kill-every S] ...: the reliability soak (see its --help)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: checks the suite works (about 2 min)"
    )
    parser.add_argument(
        "--out", default="bench-results.json", help="where to write the JSON results"
    )
    parser.add_argument(
        "--skip-peers", action="store_true", help="measure fityard only (no RQ, no Ray)"
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    run = Run()
    info = machine()
    run.say(f"machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB")

    with tempfile.TemporaryDirectory(prefix="fityard-bench-") as tmp:
        work = Path(tmp)
        run.say("making data")
        files = {
            "seed": make_data(work / "seed", rows=sizes.seed_rows)["train"],
            "tiny": make_data(work / "tiny", rows=200)["train"],
        }
        transfer_files = [
            make_parquet(work / f"transfer-{n // MiB}MiB.parquet", n) for n in sizes.transfer_bytes
        ]
        run.say("baselines: JetStream round trip, bare fits")
        js = [s * 1000 for s in jetstream_round_trips(sizes.dispatch_fits)]
        baselines = {
            "jetstream_p50_ms": percentile(js, 50),
            "jetstream_p95_ms": percentile(js, 95),
            "bare_fit_s": bare_fit(files["seed"]),
            "bare_tiny_per_s": bare_tiny_fits_per_second(files["tiny"], 50),
        }
        run.say(f"baselines: {baselines}")
        run_fityard(run, files, sizes, baselines, work, transfer_files)
        run.attempt("fityard on S3", lambda: run_fityard_s3(run, work, transfer_files))
        run.attempt(
            "fityard: tracing off and on, alternating rounds",
            lambda: run.figures.extend(
                measure_tracing_cost(
                    run.say,
                    files,
                    max(10, sizes.dispatch_fits // 2),
                    work,
                    rounds=sizes.tracing_rounds,
                )
            ),
        )
        if not args.skip_peers:
            run_peers(run, files, sizes, baselines, work)

    print(table(run.figures))
    for failure in run.failures:
        print(f"not measured: {failure}")
    elapsed = time.monotonic() - run.started
    print(
        f"\n{len(run.figures)} figures in {elapsed:.0f}s on {info['cpu']} ({info['cores']} cores); JSON: {args.out}"
    )
    Path(args.out).write_text(
        json.dumps(
            {
                "machine": info,
                "sizes": sizes.__dict__,
                "baselines": baselines,
                "seconds": elapsed,
                "figures": [f.as_dict() for f in run.figures],
                "failures": run.failures,
            },
            indent=2,
        )
    )
    return 1 if run.failures else 0


if __name__ == "__main__":
    sys.exit(main())
