"""Log lines a client cannot forge: control characters escaped in every record.

Paths, header values, model names and token subjects come from clients; a ``%0A`` in a
path decodes to a newline, and printed as is it starts a forged log line (issue 10,
item 9). ``SafeFormatter`` escapes every control character of the formatted line
(``\\n`` -> ``\\x0a``), and indents the lines of a traceback so that none of them can
pass for a record of its own. It is installed on the root logger and, through
``uvicorn_log_config``, on uvicorn's loggers (its access log prints the request path).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
WORKER_FORMAT = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
TRACEBACK_INDENT = "    "

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """``text`` with every control character written as a visible escape."""
    return _CONTROL.sub(_escaped, text)


def _indented(block: str) -> str:
    return "\n".join(TRACEBACK_INDENT + escape_controls(line) for line in block.split("\n"))


class SafeFormatter(logging.Formatter):
    """A formatter whose records take one line each, whatever their arguments hold."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802  # logging's name
        """The record's line, control characters escaped."""
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: Any) -> str:  # noqa: N802  # logging's name
        """The traceback, each line indented and escaped (its message may hold client text)."""
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:  # noqa: N802  # logging's name
        """The stack, each line indented and escaped."""
        return _indented(super().formatStack(stack_info))


def log_format(*, process_ids: bool) -> str:
    """The line format: with the process id when several worker processes log."""
    return WORKER_FORMAT if process_ids else FORMAT


def configure_logging(level: str, *, process_ids: bool = False) -> None:
    """Send every record to stderr through ``SafeFormatter`` (unless logging is set up)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter(log_format(process_ids=process_ids)))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def uvicorn_log_config(level: str, *, process_ids: bool) -> dict[str, Any]:
    """uvicorn's ``log_config``: its loggers and the root logger write through
    ``SafeFormatter`` to stderr, in every worker process (uvicorn applies it in each)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "safe": {
                "()": f"{__name__}.SafeFormatter",
                "fmt": log_format(process_ids=process_ids),
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "safe",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            **{
                name: {"handlers": [], "propagate": True}
                for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
            },
            # httpx logs every call to a remote model's upstream at INFO: a line per
            # request. Its warnings and errors still show; debug shows everything.
            "httpx": {"level": "DEBUG" if level == "debug" else "WARNING"},
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
    }
