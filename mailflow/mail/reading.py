"""A stored message read for people: its headers, text and HTML parts, raw bytes and the links
it carries (the console's message pages and ``mailflow inbox show``)."""

from __future__ import annotations

import re
from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage
from html.parser import HTMLParser
from typing import Any

SHOWN_HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "X-Mailflow-Template")
RAW_SHOWN_BYTES = 512 * 1024
_URL = re.compile(r"https?://[^\s<>\"']+")


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[tuple[str, str]] = []
        self._open: list[list[str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href") or ""
            self._open.append([href, ""])

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][1] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open:
            href, text = self._open.pop()
            self.links.append((href, " ".join(text.split())))


def _body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body((subtype,))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError):
        # An inbound message with an unknown charset or a broken encoding: show its bytes.
        payload = part.get_payload(decode=True)
        content = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content.replace("\r\n", "\n") if isinstance(content, str) else ""


def _links(text: str, html: str) -> list[dict[str, Any]]:
    """Every link of the message, with its words in the HTML part and the parts it is in."""
    found: dict[str, dict[str, Any]] = {}
    parser = _Anchors()
    parser.feed(html)
    parser.close()
    for href, words in parser.links:
        if href:
            entry = found.setdefault(href, {"url": href, "words": words, "parts": []})
            if "html" not in entry["parts"]:
                entry["parts"].append("html")
    for url in _URL.findall(text):
        entry = found.setdefault(url, {"url": url, "words": "", "parts": []})
        if "text" not in entry["parts"]:
            entry["parts"].append("text")
    return list(found.values())


def message_view(raw: bytes) -> dict[str, Any]:
    """A stored message as the console shows it: headers, text, HTML, raw, links."""
    message: EmailMessage = message_from_bytes(raw, policy=email_policy.default)
    text, html = _body(message, "plain"), _body(message, "html")
    headers = []
    for name in SHOWN_HEADERS:
        value = message.get(name)
        if value is not None:
            headers.append((name, str(value)))
    return {
        "headers": headers,
        "text": text,
        "html": html,
        "raw": raw[:RAW_SHOWN_BYTES].decode("utf-8", "replace"),
        "raw_cut": len(raw) > RAW_SHOWN_BYTES,
        "links": _links(text, html),
    }
