"""SafeFormatter: one line per record, whatever a client put in its arguments."""

from __future__ import annotations

import logging
import sys

from gateway.log_safety import SafeFormatter, escape_controls, uvicorn_log_config


def record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = sys.exc_info() if exc else None
    return logging.LogRecord("gateway.access", logging.INFO, __file__, 1, message, args, info)


def test_control_characters_are_escaped_visibly() -> None:
    assert escape_controls("a\nb\rc\x1b[31md\x00\x7f\x85\u2028") == (
        "a\\x0ab\\x0dc\\x1b[31md\\x00\\x7f\\x85\\u2028"
    )
    assert escape_controls("plain / path ünïcode") == "plain / path ünïcode"


def test_a_record_is_one_line_whatever_its_arguments_hold() -> None:
    formatter = SafeFormatter("%(levelname)s %(name)s: %(message)s")
    line = formatter.format(record("%s %s refused", "POST", "/v2/x\nCRITICAL gateway: forged"))
    assert line == "INFO gateway.access: POST /v2/x\\x0aCRITICAL gateway: forged refused"


def test_a_traceback_cannot_start_a_line_of_its_own() -> None:
    formatter = SafeFormatter("%(levelname)s %(name)s: %(message)s")
    try:
        raise ValueError("bad model 'x\nCRITICAL gateway: forged'")
    except ValueError:
        line = formatter.format(record("failed", exc=True))
    first, *rest = line.split("\n")
    assert first == "INFO gateway.access: failed"
    assert rest
    assert all(part.startswith("    ") for part in rest)
    assert rest[-1] == "    CRITICAL gateway: forged'"  # indented: not a record


def test_uvicorn_and_root_loggers_write_through_the_formatter() -> None:
    config = uvicorn_log_config("info", process_ids=True)
    assert config["formatters"]["safe"]["()"] == "gateway.log_safety.SafeFormatter"
    assert "%(process)d" in config["formatters"]["safe"]["fmt"]
    assert config["root"]["handlers"] == ["stderr"]
    uvicorn_loggers = ("uvicorn", "uvicorn.error", "uvicorn.access")
    assert all(config["loggers"][name]["propagate"] for name in uvicorn_loggers)


def test_httpx_logs_a_remote_models_calls_only_at_debug() -> None:
    # One INFO line per upstream call drowned the gateway's own log (make soak: 38,365
    # lines in 10 minutes); its warnings still show.
    assert uvicorn_log_config("info", process_ids=False)["loggers"]["httpx"]["level"] == "WARNING"
    assert uvicorn_log_config("debug", process_ids=False)["loggers"]["httpx"]["level"] == "DEBUG"
