"""The `fityard` command: move data in and out, follow jobs; with the
server installed, run the stack too.

The client's commands (upload, fit, predict, status, watch, jobs, cancel,
datasets, download) are thin wrappers over the SDK, in fityard/_commands.py.
Commands that need the server (`up`, `demo`, `make-data`) are not part of
this package: the server declares them as entry points in the
"fityard.commands" group (pyproject.toml) and they are found here with
importlib.metadata. One that cannot be loaded because the server's packages
are missing is left out of `--help`, and running it says to install
`fityard[server]` (exit 2).

An entry point in the group loads to a function called with
`command(name, handler, help) -> argparse.ArgumentParser`: it adds its
subcommand through it (and its arguments to the parser returned); the
handler gets the parsed arguments (`args.address` included) and returns the
exit code.

Output meant for scripts (ids, tables) goes to stdout; progress and errors
go to stderr. Errors print `error: <what the server said>` and exit 1,
Ctrl-C exits 130. Exit codes: 0 done, 1 error (or the job failed or was
cancelled), 2 bad command line (argparse) or a command that needs the
server, 124 `--timeout` ran out while waiting for a job (the job carries on;
124 as GNU timeout(1) uses it), 130 interrupted. Heavy imports (gRPC,
pandas) happen inside the commands that need them, so `fityard --help` is
quick.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from fityard._commands import (
    EXIT_TIMEOUT,
    cmd_cancel,
    cmd_datasets,
    cmd_delete,
    cmd_download,
    cmd_fit,
    cmd_jobs,
    cmd_predict,
    cmd_predict_rows,
    cmd_status,
    cmd_trace,
    cmd_upload,
    cmd_watch,
)

# The entry point group where other distributions (the server) add commands.
COMMANDS_GROUP = "fityard.commands"
SERVER_EXTRA = "pip install 'fityard[server]'"
# Exit code of a command whose packages are not installed (argparse's, for
# a command line this installation cannot run).
EXIT_NOT_INSTALLED = 2
EXIT_CODES_HELP = (
    "exit codes: 0 the job succeeded; 1 it failed or was cancelled, or an error; 2 bad command line; "
    f"{EXIT_TIMEOUT} --timeout ran out (the job carries on: the message says where it is); 130 interrupted"
)

Handler = Callable[[argparse.Namespace], int]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


# -- commands from entry points --------------------------------------------------


def _entry_points():
    from importlib.metadata import entry_points

    return entry_points(group=COMMANDS_GROUP)


def _extra_commands() -> dict[str, Callable[[AddCommand], None] | ImportError]:
    """The group's commands by name, in declaration order: the loaded
    function, or the ImportError that loading it raised (a package it
    needs is not installed)."""
    found: dict[str, Callable[[AddCommand], None] | ImportError] = {}
    for entry in _entry_points():
        if entry.name in found:  # one distribution seen twice on sys.path
            continue
        try:
            found[entry.name] = entry.load()
        except ImportError as exc:
            found[entry.name] = exc
    return found


def _not_installed(name: str, error: ImportError) -> Handler:
    def handler(args: argparse.Namespace) -> int:
        print(f"fityard {name} needs the server: {SERVER_EXTRA} ({error})", file=sys.stderr)
        return EXIT_NOT_INSTALLED

    return handler


# -- parser ------------------------------------------------------------


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def _add_priority(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--priority",
        choices=["interactive", "batch"],
        default=None,
        help="interactive: taken first, started at once on one thread; batch: waits for a "
        "free core (default: chosen from the job's size)",
    )


def _add_max_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-run-seconds",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="the job FAILS with 'timed out' if a run takes longer (default: derived by the server from the data size)",
    )


def _add_timeout(p: argparse.ArgumentParser, needs_wait: bool) -> None:
    """--timeout SECONDS, and the exit codes in the command's help."""
    p.add_argument(
        "--timeout",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help=("with --wait, " if needs_wait else "")
        + f"stop waiting after SECONDS: print the job's state and progress and exit {EXIT_TIMEOUT} "
        "(the job carries on; watch it again or cancel it)",
    )
    p.epilog = EXIT_CODES_HELP


def _key_value(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (e.g. max_iter=50), got {text!r}")
    return name.strip(), value.strip()


def build_parser() -> argparse.ArgumentParser:
    from fityard import __version__

    address_help = "gateway address (default: $FITYARD_ADDRESS or localhost:50051)"
    parser = argparse.ArgumentParser(
        prog="fityard",
        description="Tabular model training as a service: upload Parquet, fit, predict, download.",
        # the epilog's install hint stays on one line, to copy
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"fityard {__version__}")
    key_help = "API key (default: $FITYARD_API_KEY; none for a fityard that runs open)"
    parser.add_argument("--address", default=None, help=address_help)
    parser.add_argument("--api-key", default=None, help=key_help)
    tls = parser.add_argument_group("TLS (default: $FITYARD_TLS, $FITYARD_CA_FILE, ...)")
    tls.add_argument("--tls", action="store_true", default=None, help="connect over TLS")
    tls.add_argument("--ca-file", default=None, help="the CA that signed the gateway's certificate")
    tls.add_argument("--cert-file", default=None, help="client certificate (mTLS)")
    tls.add_argument("--key-file", default=None, help="client certificate's key (mTLS)")
    # --address and --api-key are accepted after the subcommand too; SUPPRESS
    # keeps the global value when it is not repeated there.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--address", default=argparse.SUPPRESS, help=address_help)
    common.add_argument("--api-key", default=argparse.SUPPRESS, help=key_help)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, parents=[common], help=help, description=help)
        p.set_defaults(handler=handler)
        return p

    missing = []
    for name, add in _extra_commands().items():
        if isinstance(add, ImportError):
            # Not in the help (no help= given), but parsed, whatever its
            # arguments, so that running it says what to install.
            p = sub.add_parser(name, add_help=False)
            p.set_defaults(handler=_not_installed(name, add), any_arguments=True)
            missing.append(name)
        else:
            add(command)
    if missing:
        parser.epilog = f"{', '.join(missing)}: need the server ({SERVER_EXTRA})"

    p = command("upload", cmd_upload, "upload a Parquet file; prints the dataset id")
    p.add_argument("file")
    p.add_argument("--name", default=None, help="dataset name (default: the file name)")

    command("datasets", cmd_datasets, "list datasets, newest first")

    p = command(
        "fit", cmd_fit, "train a model on a dataset (column y is the target); prints the job id"
    )
    p.add_argument("dataset_id")
    p.add_argument(
        "--param",
        action="append",
        type=_key_value,
        default=[],
        metavar="NAME=VALUE",
        help="a HistGradientBoostingClassifier parameter, e.g. max_iter=50 (repeatable)",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        help="train even if a fit of the same data and parameters (random_state set) has a model",
    )
    _add_priority(p)
    _add_max_run(p)
    p.add_argument(
        "--wait", action="store_true", help="wait for the job; exit 1 with its error if it fails"
    )
    _add_timeout(p, needs_wait=True)

    p = command(
        "predict", cmd_predict, "predict y for a dataset with a trained model; prints the job id"
    )
    p.add_argument("model_id", help="id of a succeeded fit job")
    p.add_argument("dataset_id")
    p.add_argument(
        "--probabilities",
        action="store_true",
        help="write each class's probability (proba_<class> columns) beside y",
    )
    _add_priority(p)
    _add_max_run(p)
    p.add_argument(
        "--wait", action="store_true", help="wait for the job; exit 1 with its error if it fails"
    )
    _add_timeout(p, needs_wait=True)

    p = command(
        "predict-rows",
        cmd_predict_rows,
        "predict rows now, without a job: JSON lines on stdin, JSON lines out (y, proba_<class>)",
    )
    p.add_argument("model_id", help="id of a succeeded fit job")
    p.add_argument(
        "--batch-rows",
        type=int,
        default=0,
        metavar="N",
        help="rows sent per request (default: 1 from a terminal, else 500)",
    )
    p.add_argument(
        "--predict-address",
        default=None,
        help="the predictor pool, to skip the gateway hop (default: $FITYARD_PREDICT_ADDRESS, "
        "else through the gateway)",
    )

    p = command("status", cmd_status, "show a job")
    p.add_argument("job_id")

    p = command("watch", cmd_watch, "follow a job until it ends; exit 1 if it fails")
    p.add_argument("job_id")
    _add_timeout(p, needs_wait=False)

    p = command("download", cmd_download, "download a succeeded job's output")
    p.add_argument("job_id")
    p.add_argument(
        "-o", "--out", required=True, metavar="FILE", help="file (or directory) to write"
    )
    p.add_argument(
        "--output",
        choices=["model", "predictions"],
        default=None,
        help="which output (default: a fit's model, a predict's predictions)",
    )

    command("jobs", cmd_jobs, "list jobs, newest first")

    p = command("cancel", cmd_cancel, "stop a queued or running job, or all of them (--all)")
    p.add_argument("job_id", nargs="?", help="the job to stop")
    p.add_argument("--all", action="store_true", help="every job not done yet (narrow it below)")
    p.add_argument(
        "--state", choices=["QUEUED", "RUNNING"], type=str.upper, help="with --all: only these"
    )
    p.add_argument("--kind", choices=["fit", "predict"], help="with --all: only this kind")

    p = command(
        "delete", cmd_delete, "delete datasets (ds_…) or ended jobs (job_…) with their files"
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="a dataset or job id (repeatable)")

    p = command("trace", cmd_trace, "show where a job's time went: its trace as a tree")
    p.add_argument("job_id")
    p.add_argument(
        "--data-dir",
        default=".fityard",
        help="the data dir of `fityard up`, where it keeps traces (default .fityard)",
    )
    return parser


def _user_message(exc: Exception) -> str | None:
    """What to tell the user for an expected failure; None for a bug (which
    then shows its traceback)."""
    errors = sys.modules.get("fityard._errors")
    if errors is not None and isinstance(exc, errors.FityardError):
        return exc.message
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or exc}: {exc.filename}"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and not getattr(args, "any_arguments", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if getattr(args, "timeout", None) is not None and getattr(args, "wait", True) is False:
        parser.error(f"{args.command} --timeout needs --wait (it limits the wait)")
    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`fityard jobs | head`): not an error. Point
        # stdout at devnull so the interpreter's final flush does not fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        message = _user_message(exc)
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
