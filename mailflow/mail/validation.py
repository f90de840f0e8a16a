"""Validation of an edited template before it can be saved or published.

Each problem names the part (subject, text, html), the line when there is one, and says what
is wrong: a syntax error; a variable the key does not provide (a static check of the names the
template uses against the key's context, then a render of the sample under StrictUndefined);
a required link or text missing from a part (a ``seller_new_sale`` without its refuse link);
HTML that does not parse (an element closed that was never opened, or left open).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import jinja2
from jinja2 import meta, nodes

from mailflow.mail.catalog import EmailKind
from mailflow.mail.templates import (
    PART_NAMES,
    PARTS,
    Renderer,
    TemplateError,
    TemplateSource,
    source_name,
)

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
# Elements a browser closes by itself (HTML's optional end tags).
SELF_CLOSING = frozenset({"p", "li", "td", "th", "tr", "tbody", "thead", "option", "dt", "dd"})
MAX_PART_CHARS = 200_000
_COMMENTS = re.compile(r"<!--.*?-->", re.DOTALL)


@dataclass(frozen=True)
class Problem:
    part: str  # "subject", "text" or "html"
    line: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"part": self.part, "line": self.line, "message": self.message}


def validate(
    renderer: Renderer, kind: EmailKind, locale: str, source: TemplateSource
) -> list[Problem]:
    """Every problem of ``source`` as ``kind`` in ``locale``; an empty list means it is fine."""
    problems: list[Problem] = []
    parsed: dict[str, nodes.Template] = {}
    for part in PARTS:
        text = source.part(part)
        label = PART_NAMES[part]
        if len(text) > MAX_PART_CHARS:
            problems.append(Problem(label, None, f"longer than {MAX_PART_CHARS} characters"))
            continue
        if not text.strip():
            problems.append(Problem(label, None, "must not be empty"))
            continue
        bad = next((c for c in text if ord(c) < 32 and c not in "\n\r\t"), None)
        if bad is not None:
            line = text[: text.index(bad)].count("\n") + 1
            problems.append(Problem(label, line, f"control character U+{ord(bad):04X}"))
            continue
        try:
            parsed[part] = renderer.sandbox.parse(text, source_name(kind.key, locale, part))
        except jinja2.TemplateSyntaxError as exc:
            problems.append(Problem(label, exc.lineno, f"syntax error: {exc.message}"))
    for part, tree in parsed.items():
        try:
            problems += _unknown_names(kind, PART_NAMES[part], tree)
        except jinja2.TemplateError as exc:  # e.g. "No filter named 'shout'"
            at: int | None = getattr(exc, "lineno", None)
            problems.append(Problem(PART_NAMES[part], at, str(exc.message or exc)))
    if problems:
        order = list(PART_NAMES.values())
        return sorted(problems, key=lambda p: (order.index(p.part), p.line or 0))

    try:
        rendered = renderer.render(kind.key, locale, kind.sample_context(), source=source)
    except TemplateError as exc:
        part = PART_NAMES.get(exc.part or "", exc.part or "template")
        return [Problem(part, exc.line, exc.message)]
    # What the reader sees: HTML comments do not count as showing anything.
    outputs = {"txt": rendered.text, "html": _COMMENTS.sub("", rendered.html)}
    context = kind.sample_context()
    for requirement in kind.requires:
        value = requirement.sample_value(context)
        for part in requirement.parts:
            shown = outputs[part] if part == "txt" else html.unescape(outputs[part])
            if value not in shown:
                problems.append(
                    Problem(
                        PART_NAMES[part],
                        None,
                        f"must show {{{{ {requirement.what} }}}} ({kind.key} requires it)",
                    )
                )
    problems += [Problem("html", line, message) for line, message in _html_problems(source.html)]
    return problems


def _unknown_names(kind: EmailKind, part: str, tree: nodes.Template) -> list[Problem]:
    provided = set(kind.variables) | {"locale"}
    problems = []
    known_globals = {"range", "loop", "self", "super", "varargs", "kwargs", "caller", "namespace"}
    for name in sorted(meta.find_undeclared_variables(tree) - provided - known_globals):
        line = next(
            (n.lineno for n in tree.find_all(nodes.Name) if n.name == name and n.ctx == "load"),
            None,
        )
        available = ", ".join(sorted(kind.variables))
        problems.append(
            Problem(part, line, f"{kind.key} provides no variable {name!r} (it has: {available})")
        )
    sample = kind.sample_context()
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and isinstance(sample.get(node.node.name), dict):
            fields = sample[node.node.name]
            if node.attr not in fields:
                problems.append(
                    Problem(
                        part,
                        node.lineno,
                        f"{node.node.name} has no {node.attr!r} "
                        f"(it has: {', '.join(sorted(fields))})",
                    )
                )
    return problems


class _Checker(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, int]] = []
        self.problems: list[tuple[int, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append((tag, self.getpos()[0]))

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        open_tags = [name for name, _ in self.stack]
        if tag not in open_tags:
            self.problems.append((self.getpos()[0], f"</{tag}> closes nothing that is open"))
            return
        while self.stack:
            name, line = self.stack.pop()
            if name == tag:
                return
            if name not in SELF_CLOSING:
                self.problems.append((line, f"<{name}> is not closed before </{tag}>"))


def _html_problems(markup: str) -> list[tuple[int | None, str]]:
    """Structural problems of the HTML template's own markup (Jinja blocks left in place)."""
    checker = _Checker()
    checker.feed(markup)
    checker.close()
    problems: list[tuple[int | None, str]] = list(checker.problems)
    for name, line in checker.stack:
        if name not in SELF_CLOSING and name not in ("html", "body", "head"):
            problems.append((line, f"<{name}> is never closed"))
    return problems
