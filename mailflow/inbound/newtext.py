"""The new text of a reply: what the person wrote, without the quoted history or the signature.

The body is the message's first ``text/plain`` part, or its HTML turned into text when it has
none (quoted blocks dropped, see ``_HtmlText``). ``mail-parser-reply``, with French and
English, cuts the quoted history at its attribution line (``Le … a écrit :``, ``On … wrote:``,
``De : … Envoyé : …``, ``From: … Sent: …``) and drops the signature; before it, this module
cuts at ``-----Message d'origine-----`` (which the parser only knows in English) and at an
attribution line a mail program wrapped over several lines (Gmail does, for long addresses);
after it, every ``>`` line is dropped. At most ``MAX_CHARS`` characters are kept.

Whatever the bytes, ``new_text`` returns a string: a part it cannot decode is read as UTF-8
with replacement characters, never an exception.
"""

from __future__ import annotations

import re
from email.message import Message
from html.parser import HTMLParser

from mailparser_reply import EmailMessage as ParsedReply

MAX_CHARS = 10_000
MAX_SCANNED = 40_000
"""Characters of the body handed to the parser: the new text comes first, and the parser's
expressions must not meet megabytes of quoted history on one line."""
LANGUAGES = ("fr", "en")

_ORIGINAL_MESSAGE = re.compile(
    r"^[ \t>]*-{3,}\s*(?:original message|message d[’']origine)\s*-{3,}[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_ATTRIBUTION = re.compile(
    r"^(?:le|on)\b.{0,400}(?:a [ée]crit|wrote)\s*:?$", re.IGNORECASE | re.DOTALL
)
_SIGNATURE_MARK = re.compile(r"^-- ?$")
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def body_text(message: Message) -> str:
    """The message's text: its first ``text/plain`` part, else its first ``text/html`` part
    as text, else ``""``."""
    plain = html = None
    for part in message.walk():
        if part.is_multipart() or part.get_content_disposition() == "attachment":
            continue
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None:
            plain = _decoded(part)
        elif kind == "text/html" and html is None:
            html = _decoded(part)
    if plain is not None and plain.strip():
        return plain
    if html is not None:
        return html_to_text(html)
    return plain or ""


def _decoded(part: Message) -> str:
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: nothing readable in it
        return ""
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return payload.decode(charset, errors="replace")
    except LookupError:  # a charset Python does not know
        return payload.decode("utf-8", errors="replace")


def new_text(message: Message) -> str:
    """What the sender wrote in this reply, as plain text (``""`` when nothing is left)."""
    return extract(body_text(message))


def extract(text: str) -> str:
    """The new text of a reply body (plain text)."""
    text = _CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))[:MAX_SCANNED]
    text = _before_history(text)
    masked, long_lines = _mask_long_lines(text)
    parsed = ParsedReply(text=masked, languages=list(LANGUAGES), keep_hyphen_lists=True).read()
    kept = parsed.replies[0].body if parsed.replies else masked
    kept = _MASK.sub(lambda m: long_lines[int(m.group(1))], kept)
    lines = [line for line in kept.split("\n") if not line.lstrip().startswith(">")]
    return _trimmed("\n".join(lines))[:MAX_CHARS].strip()


MAX_LINE = 300
"""Longer lines are never an attribution or a header; the parser's expressions take
quadratic time and more on a long line, so it is shown a placeholder instead."""
_MASK = re.compile("\ue000([0-9]+)\ue001")


def _mask_long_lines(text: str) -> tuple[str, list[str]]:
    text = text.replace("\ue000", "").replace("\ue001", "")
    long_lines: list[str] = []
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if len(line) > MAX_LINE:
            lines[index] = f"\ue000{len(long_lines)}\ue001"
            long_lines.append(line.strip())
    return "\n".join(lines), long_lines


def _before_history(text: str) -> str:
    """``text`` up to the quoted history the parser would miss: an ``Original Message`` line,
    a signature mark, or the attribution line (possibly wrapped) above the first ``>`` line."""
    found = _ORIGINAL_MESSAGE.search(text)
    if found:
        text = text[: found.start()]
    lines = text.split("\n")
    for index, line in enumerate(lines):
        if _SIGNATURE_MARK.match(line):
            return "\n".join(lines[:index])
        if line.lstrip().startswith(">"):
            # The attribution is the few non-empty lines just above the quote.
            start = index
            while start > 0 and not lines[start - 1].strip():
                start -= 1
            for first in range(start - 1, max(start - 4, -1), -1):
                joined = " ".join(part.strip() for part in lines[first:start])
                if _ATTRIBUTION.match(joined):
                    return "\n".join(lines[:first])
            break
    return text


def _trimmed(text: str) -> str:
    """No run of more than one empty line, no trailing spaces."""
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- HTML ---------------------------------------------------------------------------------

_BLOCKS = frozenset(
    {
        "p",
        "div",
        "br",
        "tr",
        "li",
        "ul",
        "ol",
        "table",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "pre",
        "hr",
        "section",
        "article",
        "header",
        "footer",
    }
)
_SKIPPED = frozenset({"script", "style", "head", "title", "blockquote"})
_QUOTE_CLASSES = ("gmail_quote", "moz-cite-prefix", "yahoo_quoted", "protonmail_quote")
_QUOTE_IDS = ("divrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container")
_VOID = frozenset({"br", "hr", "img", "meta", "link", "input", "wbr", "col", "area", "base"})


class _HtmlText(HTMLParser):
    """Visible text of an HTML reply, with the quoted parts left out: ``<blockquote>``,
    Gmail's ``gmail_quote``, Thunderbird's citation line, Outlook's ``divRplyFwdMsg`` and
    everything after it (Outlook puts the history after that marker, not inside it)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0
        self.stack: list[str] = []
        self.done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.done:
            return
        values = {name: (value or "") for name, value in attrs}
        classes = values.get("class", "").lower()
        ident = values.get("id", "").lower()
        if any(marker in ident for marker in _QUOTE_IDS) or (
            tag == "hr" and "stopspelling" in ident
        ):
            self.done = True
            return
        if tag in _VOID:
            if tag == "br":
                self.parts.append("\n")  # a line break is kept, even an empty line
            elif tag in _BLOCKS:
                self._line_end()
            return
        quoted = tag in _SKIPPED or any(marker in classes for marker in _QUOTE_CLASSES)
        if self.skip_depth or quoted:
            self.skip_depth += 1
        self.stack.append(tag)
        if tag in _BLOCKS:
            self._line_end()

    def handle_endtag(self, tag: str) -> None:
        if self.done or tag in _VOID or tag not in self.stack:
            return
        # Close up to the matching tag (HTML in mail is often not well nested).
        while self.stack:
            top = self.stack.pop()
            if self.skip_depth:
                self.skip_depth -= 1
            if top == tag:
                break
        if tag in _BLOCKS:
            self._line_end()

    def _line_end(self) -> None:
        """A block starts or ends on its own line: one line break, not one per tag."""
        if self.parts and not self.parts[-1].endswith("\n"):
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.done and not self.skip_depth:
            self.parts.append(re.sub(r"[ \t\r\n]+", " ", data))


def html_to_text(html: str) -> str:
    """The visible, unquoted text of an HTML body."""
    reader = _HtmlText()
    try:
        reader.feed(html[: MAX_SCANNED * 4])
        reader.close()
    except Exception:  # html.parser is lenient; anything it still refuses yields what it read
        pass
    text = "".join(reader.parts).replace("\xa0", " ")
    return "\n".join(line.strip() for line in text.split("\n"))
