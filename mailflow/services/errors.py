"""Errors the services raise; the web layer maps them to HTTP answers, the CLI to messages."""

from __future__ import annotations


class ServiceError(Exception):
    code = "error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        status: str | None = None,
    ) -> None:
        # ``hint`` is a code (``cancel.pending``: the action, then the state), worded by the
        # web and the CLI with ``mailflow.i18n.hint`` in their reader's language.
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.status = status
        if code is not None:
            self.code = code


class NotFound(ServiceError):
    code = "not_found"


class Conflict(ServiceError):
    code = "conflict"


class InvalidInput(ServiceError):
    """Input the API's schema could not catch (it needs the database); names the field."""

    code = "invalid"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
