"""Is this message an automatic one? RFC 3834's signs, and the common non-standard ones."""

from __future__ import annotations

from email.message import EmailMessage, Message

_BULK = frozenset({"bulk", "junk", "list", "auto_reply"})


def _header(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # a header too broken for the parser's policy is no sign either way
        return None
    return None if value is None else str(value).strip()


def is_auto_reply(message: EmailMessage | Message, mail_from: str) -> str | None:
    """Why ``message`` is automatic (a reason to keep), or None: ``Auto-Submitted`` other
    than ``no``, ``X-Autoreply``, ``X-Autorespond``, ``Precedence: bulk|junk|list|auto_reply``,
    ``List-Id``, or an empty envelope sender (``MAIL FROM:<>``)."""
    if not mail_from.strip().strip("<>").strip():
        return "empty envelope sender"
    submitted = _header(message, "Auto-Submitted")
    if submitted is not None:
        word = submitted.split(";", 1)[0].strip().lower()
        if word and word != "no":
            return f"Auto-Submitted: {word[:40]}"
    for name in ("X-Autoreply", "X-Autorespond"):
        if _header(message, name) is not None:
            return name
    precedence = _header(message, "Precedence")
    if precedence is not None and precedence.lower() in _BULK:
        return f"Precedence: {precedence.lower()}"
    if _header(message, "List-Id") is not None:
        return "List-Id"
    return None
