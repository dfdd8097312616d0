"""igw.common.telemetry.logging: verbosity levels, output formats, library logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from igw.common.telemetry import logging as telemetry_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo a test's configure_logging: its handler, the root level and the stored verbosity."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    telemetry_logging.configure_logging(telemetry_logging.DEFAULT, stream=io.StringIO())
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def configured(verbosity: int, *, json_format: bool = True) -> io.StringIO:
    stream = io.StringIO()
    telemetry_logging.configure_logging(verbosity, json_format, stream=stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.parametrize(
    ("verbosity", "expected"),
    [
        pytest.param(0, ["warned", "failed"], id="v0-warnings-only"),
        pytest.param(1, ["warned", "failed"], id="v1-warnings-only"),
        pytest.param(2, ["informed", "warned", "failed"], id="v2-default-info"),
        pytest.param(3, ["informed", "warned", "failed"], id="v3-verbose-still-info"),
        pytest.param(4, ["debugged", "informed", "warned", "failed"], id="v4-debug"),
        pytest.param(5, ["debugged", "informed", "warned", "failed"], id="v5-trace"),
    ],
)
def test_verbosity_selects_the_events_written(verbosity: int, expected: list[str]) -> None:
    stream = configured(verbosity)
    log = telemetry_logging.get_logger("igw.test")
    log.debug("debugged")
    log.info("informed")
    log.warning("warned")
    log.error("failed")
    assert [line["event"] for line in json_lines(stream)] == expected


@pytest.mark.parametrize(
    ("verbosity", "level", "expected"),
    [
        pytest.param(1, telemetry_logging.DEFAULT, False, id="default-off-at-v1"),
        pytest.param(2, telemetry_logging.DEFAULT, True, id="default-on-at-v2"),
        pytest.param(2, telemetry_logging.VERBOSE, False, id="verbose-off-at-v2"),
        pytest.param(3, telemetry_logging.VERBOSE, True, id="verbose-on-at-v3"),
        pytest.param(4, telemetry_logging.TRACE, False, id="trace-off-at-v4"),
        pytest.param(5, telemetry_logging.TRACE, True, id="trace-on-at-v5"),
    ],
)
def test_enabled_follows_the_configured_verbosity(
    verbosity: int, level: int, expected: bool
) -> None:
    configured(verbosity)
    assert telemetry_logging.enabled(level) is expected


def test_json_line_carries_level_logger_timestamp_and_fields() -> None:
    stream = configured(2)
    telemetry_logging.get_logger("igw.test").info("request", model="llama", bytes=12)
    [line] = json_lines(stream)
    assert line["event"] == "request"
    assert line["level"] == "info"
    assert line["logger"] == "igw.test"
    assert line["model"] == "llama"
    assert line["bytes"] == 12
    assert str(line["timestamp"]).endswith("Z")


def test_stdlib_library_logs_are_rendered_as_json_too() -> None:
    stream = configured(2)
    logging.getLogger("grpc._server").warning("stream %s reset", "abc")
    [line] = json_lines(stream)
    assert {key: line[key] for key in ("event", "level", "logger")} == {
        "event": "stream abc reset",
        "level": "warning",
        "logger": "grpc._server",
    }


def test_exception_traceback_is_kept_in_the_json_line() -> None:
    stream = configured(2)
    try:
        int("not a number")
    except ValueError:
        telemetry_logging.get_logger("igw.test").exception("processing failed")
    [line] = json_lines(stream)
    assert line["level"] == "error"
    assert "ValueError: invalid literal" in str(line["exception"])


def test_console_format_is_human_readable_text() -> None:
    stream = configured(4, json_format=False)
    telemetry_logging.get_logger("igw.test").debug("picked endpoint", endpoint="10.0.0.1:8000")
    output = stream.getvalue()
    assert not output.startswith("{")
    assert "picked endpoint" in output
    assert "endpoint=10.0.0.1:8000" in output


def test_reconfiguring_replaces_the_handler_instead_of_adding_one() -> None:
    first = configured(2)
    second = configured(2)
    telemetry_logging.get_logger("igw.test").info("once")
    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once"]
