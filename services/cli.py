"""The server's `fityard` commands: `up`, `demo` and `make-data`.

The client CLI (fityard/cli.py) finds them through the "fityard.commands"
entry points in pyproject.toml and calls each `add_*` below with its
`command(name, handler, help)`, which adds the subcommand and returns its
parser. Each handler gets the parsed arguments and returns the exit code.

They need the server's packages (`pip install 'fityard[server]'`).
Importing this module checks that those are installed, by name and without
importing them, and fails with ModuleNotFoundError if one is missing: a
client-only installation then leaves these commands out of `fityard --help`
and says what to install when one is run, while where they are installed
`fityard --help` stays quick (the heavy imports happen inside the handlers).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

# Top-level modules of the server extra (pyproject.toml) that the stack these
# commands start, the seed data and the demo use.
SERVER_MODULES = (
    "grpc_health",
    "grpc_reflection",
    "nats",
    "minio",
    "pandas",
    "pyarrow",
    "sklearn",
    "threadpoolctl",
)


def missing_modules() -> list[str]:
    """SERVER_MODULES that are not installed."""
    return [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]


if _missing := missing_modules():
    raise ModuleNotFoundError(f"No module named {_missing[0]!r}", name=_missing[0])


# -- up ----------------------------------------------------------------------------


def add_up(command) -> None:
    """`fityard up`: the embedded stack in the foreground."""
    p = command("up", cmd_up, "run the whole stack in the foreground until Ctrl-C")
    p.add_argument("--port", type=int, default=50051, help="gateway port (default 50051)")
    p.add_argument(
        "--data-dir", default=".fityard", help="where data and logs live (default .fityard)"
    )
    p.add_argument("--trainers", type=int, default=None, help="number of trainer processes")
    p.add_argument(
        "--predictors",
        type=int,
        default=None,
        help="number of predictor processes, for online predictions (default: one per core)",
    )
    p.add_argument(
        "--storage", choices=["local", "s3"], default="local", help="object store (default local)"
    )


def cmd_up(args: argparse.Namespace) -> int:
    """Run the stack in the foreground until Ctrl-C or SIGTERM, restarting
    any child that dies (reported on stderr), keeping its jobs' traces for
    `fityard trace`."""
    import signal
    import threading

    from services.common.config import usable_cores
    from services.embedded import EmbeddedStack, StackError

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stack = EmbeddedStack(
        args.data_dir,
        port=args.port,
        trainers=args.trainers,
        predictors=args.predictors or usable_cores(),
        storage=args.storage,
        supervise=True,
        report=_print_to_stderr,
        keep_traces=True,
        metrics=True,
        express_trainer=True,
    )
    try:
        stack.start()
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    _print_up(stack)
    while not stop.wait(0.5):
        pass
    stack.stop()
    print("fityard stopped", flush=True)
    return 0


def _print_up(stack) -> None:
    """What `fityard up` says once it serves: where, with what, how to reach
    the predictors, and whether calls need API keys."""
    from services.common.config import SCHEMA
    from services.embedded import STACK_FILE

    print(
        f"fityard is up at localhost:{stack.port} ({stack.trainers} trainer(s) and one for small "
        f"jobs, {stack.storage} store, "
        f"data and logs in {stack.data_dir}, ports and metrics in {stack.data_dir / STACK_FILE}); "
        "Ctrl-C to stop",
        flush=True,
    )
    print(
        "online predictions through the gateway (an SDK client moves to the pool after "
        f"its first call), or straight to the {stack.predictors} predictor(s) at "
        f"{stack.predict_address} (Client(predict_address=...), FITYARD_PREDICT_ADDRESS)",
        flush=True,
    )
    keys_env = SCHEMA.env("api_keys_file")
    keys = os.environ.get(keys_env)
    print(
        f"API keys from {keys}: every call needs one (fityard keys mint TENANT)"
        if keys
        else "running open, without API keys: anyone on this machine can call it, as tenant "
        f"'default' (set {keys_env} to require keys)",
        flush=True,
    )


def _print_to_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- top -------------------------------------------------------------------------


def add_top(command) -> None:
    """`fityard top`: queue, trainers, running jobs, recent failures, live."""
    p = command("top", cmd_top, "watch the queue, trainers, running jobs and recent failures")
    p.add_argument(
        "--data-dir", default=".fityard", help="the data dir of `fityard up` (default .fityard)"
    )
    p.add_argument(
        "--nats",
        default=None,
        help="NATS URL (default: the running `fityard up`'s, else $FITYARD_NATS_URL)",
    )
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument(
        "--interval", type=float, default=1.0, help="seconds between refreshes (default 1)"
    )


def cmd_top(args: argparse.Namespace) -> int:
    from services.top import main

    return main(args.nats, args.data_dir, args.once, args.interval)


def add_keys(command) -> None:
    """`fityard keys mint TENANT --file FILE`: an API key for a tenant."""
    p = command(
        "keys", cmd_keys, "mint an API key for a tenant (printed once; its digest goes in the file)"
    )
    p.add_argument("action", choices=["mint"])
    p.add_argument("tenant", help="the tenant the key belongs to, e.g. acme")
    from services.common.config import SCHEMA

    keys_file = SCHEMA.env("api_keys_file")
    p.add_argument(
        "--file",
        default=os.environ.get(keys_file) or None,
        required=not os.environ.get(keys_file),
        help=f"the gateway's keys file (default: ${keys_file}); created if missing",
    )


def cmd_keys(args: argparse.Namespace) -> int:
    from services.common.api_keys import mint

    try:
        key = mint(args.tenant, args.file)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(key)
    print(
        f"key for tenant {args.tenant!r}: its digest is in {args.file} (the gateway reads it "
        "again by itself); give the key to its user (FITYARD_API_KEY) now, it is stored nowhere. "
        "To revoke it, delete its line.",
        file=sys.stderr,
    )
    return 0


# -- make-data ------------------------------------------------------------------


def add_make_data(command) -> None:
    """`fityard make-data`: the seed Parquet files."""
    p = command(
        "make-data", cmd_make_data, "write the seed Parquet files (train, test and two bad ones)"
    )
    p.add_argument("dir", help="directory to write into")
    p.add_argument("--rows", type=int, default=100_000, help="rows in total (default 100000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def cmd_make_data(args: argparse.Namespace) -> int:
    from ml.data import make_data

    files = make_data(args.dir, rows=args.rows, seed=args.seed)
    for path in files.values():
        print(path)
    return 0


# -- demo ------------------------------------------------------------------------


def add_demo(command) -> None:
    """`fityard demo`: the seed workflow end to end (services/demo.py)."""
    p = command("demo", cmd_demo, "run the whole workflow, including what bad files produce")
    p.add_argument(
        "--data-dir", default=None, help="where to write the demo's files (default: a temp dir)"
    )
    p.add_argument("--rows", type=int, default=100_000, help="rows of seed data (default 100000)")


def cmd_demo(args: argparse.Namespace) -> int:
    from services.demo import run_demo
    from services.embedded import StackError

    try:
        return run_demo(args.address, args.data_dir, args.rows)
    except StackError as exc:  # the throwaway stack did not start
        print(f"error: {exc}", file=sys.stderr)
        return 1
