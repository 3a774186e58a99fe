"""Logging: JSON or console lines, and a filter that keeps secrets out of every log
(uvicorn writes the request line with its query string, ``?token=`` included)."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import ClassVar

import orjson

_SECRET = re.compile(r"((?:token|access_token|password|secret)=)[^&\s\"']+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+")


def redact(text: str) -> str:
    return _BEARER.sub(r"\1[redacted]", _SECRET.sub(r"\1[redacted]", text))


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


class ClientFaults(logging.Filter):
    """A client's fault is one line, not a server traceback: uvicorn logs a text
    frame that is not UTF-8 with ``logger.exception`` (then closes it with 1007)."""

    FAULTS: ClassVar[dict[str, str]] = {
        "Invalid UTF-8 sequence received from client.": (
            "a client sent a text frame that is not valid UTF-8; closed it with 1007"
        )
    }

    def filter(self, record: logging.LogRecord) -> bool:
        line = self.FAULTS.get(record.msg) if isinstance(record.msg, str) else None
        if line is not None:
            record.msg, record.args = line, None
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


def configure_logging(level: str, fmt: str, debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.addFilter(ClientFaults())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("DEBUG" if debug else level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    logging.getLogger("aiosqlite").setLevel("INFO")
    logging.getLogger("alembic").setLevel("WARNING")
    logging.getLogger("httpx").setLevel("WARNING")
