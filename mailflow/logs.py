"""Log output: ``[server] log_format`` (``text`` or ``json``, one object a line) and
``log_level``, for every record of the process (mailflow's, uvicorn's, the access lines).

The fields a record carries beyond its message (``extra=``: the access line's request id,
method, path, status, duration) are appended to a text line as ``key=value`` and are keys of
the JSON object. Nothing secret is passed in: the access line never holds a query string or an
action or login token (``web.access``).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# uvicorn adds ``color_message`` (its message with terminal colours) to its records.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = _extra(record)
        return line + "".join(f" {k}={v}" for k, v in extra.items()) if extra else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_extra(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure(log_format: str = "text", level: str = "info") -> None:
    """One handler on the root logger, in ``log_format``, at ``level``; uvicorn's loggers
    write through it too."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aiosmtpd warns of every unrecognised command: under a flood of garbage, a line per
    # command. The inbound server slows such clients down and logs once when it lets one go.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
