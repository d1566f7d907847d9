"""Log lines of the services: one JSON object per line, or text for people.

Every line says when, which service, the level, the logger and the message;
and, where there is one, the job it is about (`job_id`, from `job_context`
around a job's handling) and the current OpenTelemetry span (`trace_id`,
`span_id`), so that a log search for a job or a trace finds every service's
lines about it. An exception goes in as one string field (`exception`).

The format is FITYARD_LOG_FORMAT (`json` or `text`); unset, JSON when stderr
is not a terminal (a container, a log collector, `fityard up`'s log files if
asked) and text when it is. FITYARD_LOG_LEVEL sets the level (INFO).
Both are read in the one config (services/common/config.py).

JSON line, e.g.::

    {"time": "2024-05-01T12:00:00.123Z", "service": "trainer", "level": "INFO",
     "logger": "services.trainer.runner", "message": "running fit job job_…",
     "job_id": "job_…", "trace_id": "4bf9…", "span_id": "00f0…"}

Text line (what `fityard up` writes in <data_dir>/logs, and what tests and
bench/ parse: the time and service come first)::

    2024-05-01 12:00:00,123 trainer INFO services.trainer.runner: running fit job job_… [job_id=job_… trace_id=4bf9…]
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import json
import logging
import sys
import time
from collections.abc import Iterator

from opentelemetry import trace

from .config import LOG_FORMATS

_job_id: contextvars.ContextVar[str] = contextvars.ContextVar("fityard_job_id", default="")


@contextlib.contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Lines logged inside (in this task or thread, and in tasks and threads
    started from it) carry `job_id`."""
    token = _job_id.set(job_id or "")
    try:
        yield
    finally:
        try:
            _job_id.reset(token)
        except ValueError:  # a generator closed from another context: that one never had it
            pass


def for_job(attribute: str = "job_id"):
    """Decorate a grpc.aio servicer method (unary or server-streaming) so that
    its lines carry the job its request names (`request.<attribute>`)."""

    def decorate(method):
        if inspect.isasyncgenfunction(method):

            @functools.wraps(method)
            async def stream_wrapper(self, request, context):
                with job_context(getattr(request, attribute, "")):
                    async for item in method(self, request, context):
                        yield item

            return stream_wrapper

        @functools.wraps(method)
        async def unary_wrapper(self, request, context):
            with job_context(getattr(request, attribute, "")):
                return await method(self, request, context)

        return unary_wrapper

    return decorate


def current_job_id() -> str:
    return _job_id.get()


# LogRecord attributes that are not extra fields given with `extra=`.
_RECORD_FIELDS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)


def _context_fields() -> dict[str, str]:
    """job_id and the current span's trace_id/span_id, those that exist."""
    fields = {}
    job_id = _job_id.get()
    if job_id:
        fields["job_id"] = job_id
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["trace_id"] = format(span.trace_id, "032x")
        fields["span_id"] = format(span.span_id, "016x")
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line (no newline inside: tracebacks are escaped)."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": _iso_time(record.created),
            "service": self.service,
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context_fields(),
        }
        # Fields given with `extra={...}` (a job_id given that way wins over the context's).
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                line[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`<time> <service> <LEVEL> <logger>: <message> [job_id=… trace_id=…]`."""

    def __init__(self, service: str):
        super().__init__(f"%(asctime)s {service} %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        fields = _context_fields()
        fields.pop("span_id", None)  # the trace is what a reader looks up
        if fields:
            text += " [" + " ".join(f"{key}={value}" for key, value in fields.items()) + "]"
        return text


def _iso_time(created: float) -> str:
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + (
        f".{int((created - seconds) * 1000):03d}Z"
    )


def resolve_format(log_format: str, stream=None) -> str:
    """`json` or `text`: the setting, or (empty) JSON unless `stream`
    (stderr) is a terminal."""
    if log_format:
        return log_format
    stream = stream if stream is not None else sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return "text" if tty else "json"


def formatter(service: str, log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(service)
    if log_format == "text":
        return TextFormatter(service)
    raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")


def configure(service: str, level: str = "INFO", log_format: str = "") -> None:
    """The root logger writes `service`'s lines to stderr at `level`, in
    `log_format` (json, text, or empty: chosen by whether stderr is a
    terminal). Replaces handlers installed before; Python warnings are
    logged too, so stderr carries nothing but log lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(service, resolve_format(log_format, sys.stderr)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
