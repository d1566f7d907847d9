"""Log lines (services/common/logs.py): JSON objects with the service, level,
job and trace they belong to; text on request; the settings in the config."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from services.common import logs
from services.common.config import Config


def _record(message: str = "hello %s", args=("world",), exc_info=None, **extra):
    record = logging.LogRecord(
        "services.test", logging.WARNING, __file__, 1, message, args, exc_info
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def _json(record) -> dict:
    line = logs.JsonFormatter("trainer").format(record)
    assert "\n" not in line
    return json.loads(line)


def test_a_json_line_has_time_service_level_logger_and_message():
    line = _json(_record())
    assert line["service"] == "trainer"
    assert line["level"] == "WARNING"
    assert line["logger"] == "services.test"
    assert line["message"] == "hello world"
    assert line["time"].endswith("Z") and "T" in line["time"]
    assert "job_id" not in line and "trace_id" not in line and "span_id" not in line


def test_the_job_id_comes_from_the_context_and_ends_with_it():
    with logs.job_context("job_0123456789abc1234567"):
        assert _json(_record())["job_id"] == "job_0123456789abc1234567"
    assert "job_id" not in _json(_record())


def test_the_job_context_reaches_tasks_started_inside_it_and_no_others():
    async def log_line() -> dict:
        return _json(_record())

    async def main():
        with logs.job_context("job_a"):
            inside = asyncio.create_task(log_line())
        outside = asyncio.create_task(log_line())
        return await inside, await outside

    inside, outside = asyncio.run(main())
    assert inside["job_id"] == "job_a"
    assert "job_id" not in outside


def test_the_current_spans_trace_and_span_ids_are_in_the_line():
    context = SpanContext(
        trace_id=0x4BF92F3577B34DA6A3CE929D0E0E4736,
        span_id=0x00F067AA0BA902B7,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        line = _json(_record())
        text = logs.TextFormatter("gateway").format(_record())
    assert line["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert line["span_id"] == "00f067aa0ba902b7"
    assert text.endswith("[trace_id=4bf92f3577b34da6a3ce929d0e0e4736]")


def test_an_exception_is_one_string_field():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = _json(_record(exc_info=sys.exc_info()))
    assert isinstance(line["exception"], str)
    assert "ValueError: boom" in line["exception"] and "Traceback" in line["exception"]


def test_extra_fields_are_kept_and_anything_becomes_json():
    line = _json(_record(job_id="job_x", rows=12, shape=(3, 4)))
    assert (line["job_id"], line["rows"], line["shape"]) == ("job_x", 12, "(3, 4)")


def test_text_format_starts_with_time_and_service_and_ends_with_the_job():
    with logs.job_context("job_b"):
        text = logs.TextFormatter("scheduler").format(_record())
    # tests/support/faults.py and bench/soak.py read "<date> <time> <service> ..."
    date, clock, service, level, rest = text.split(" ", 4)
    assert (service, level) == ("scheduler", "WARNING")
    assert rest == "services.test: hello world [job_id=job_b]"


def test_the_format_defaults_to_json_unless_stderr_is_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert logs.resolve_format("", io.StringIO()) == "json"
    assert logs.resolve_format("", Tty()) == "text"
    assert logs.resolve_format("text", io.StringIO()) == "text"
    assert logs.resolve_format("json", Tty()) == "json"


def test_configure_writes_the_chosen_format_to_stderr(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("gateway", "INFO", "json")
        logging.getLogger("services.x").debug("not shown")
        logging.getLogger("services.x").info("shown")
        logs.configure("gateway", "DEBUG", "text")
        logging.getLogger("services.x").debug("now shown")
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])
        logging.captureWarnings(False)
    first, second = stream.getvalue().splitlines()
    assert json.loads(first)["message"] == "shown"
    assert " gateway DEBUG services.x: now shown" in second


def test_the_settings_are_read_in_the_config(monkeypatch):
    monkeypatch.setenv("FITYARD_LOG_FORMAT", "JSON")
    monkeypatch.setenv("FITYARD_LOG_LEVEL", "debug")
    config = Config.from_env()
    assert (config.log_format, config.log_level) == ("json", "DEBUG")
    monkeypatch.delenv("FITYARD_LOG_FORMAT")
    monkeypatch.delenv("FITYARD_LOG_LEVEL")
    assert (Config.from_env().log_format, Config.from_env().log_level) == ("", "INFO")


@pytest.mark.parametrize(
    ("name", "value"), [("FITYARD_LOG_FORMAT", "yaml"), ("FITYARD_LOG_LEVEL", "loud")]
)
def test_an_unknown_log_setting_is_refused_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as refused:
        Config.from_env()
    assert name in str(refused.value) and repr(value) in str(refused.value)


def test_for_job_names_the_requests_job_in_unary_and_streaming_handlers():
    class Request:
        job_id = "job_c"

    class Service:
        @logs.for_job()
        async def Get(self, request, context):
            return logs.current_job_id()

        @logs.for_job()
        async def Watch(self, request, context):
            yield logs.current_job_id()
            yield logs.current_job_id()

    async def main():
        unary = await Service().Get(Request(), None)
        stream = [item async for item in Service().Watch(Request(), None)]
        return unary, stream, logs.current_job_id()

    assert asyncio.run(main()) == ("job_c", ["job_c", "job_c"], "")
