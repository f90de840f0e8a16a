"""Validation of an edited template before it can be saved or published.

Each problem names the part (subject, text, html), the line when there is one, and says what
is wrong: a syntax error; a variable the key does not provide (a static check of the names the
template uses against the key's context, then a render of the sample under StrictUndefined);
a required link or text missing from a part (a ``seller_new_sale`` without its refuse link);
HTML that does not parse (an element closed that was never opened, or left open); text after
``{% extends %}`` outside any block, which Jinja would drop without a word.

Every problem is reported at once: each part that parses is rendered on its own, with the
names it wrongly uses left blank, so that an unknown variable does not hide a missing link or
broken HTML in the same save.
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
    blanks: dict[str, dict[str, Any]] = {}
    for part, tree in parsed.items():
        problems += _outside_blocks(PART_NAMES[part], tree)
        try:
            found, blanks[part] = _unknown_names(kind, PART_NAMES[part], tree)
            problems += found
        except jinja2.TemplateError as exc:  # e.g. "No filter named 'shout'"
            at: int | None = getattr(exc, "lineno", None)
            problems.append(Problem(PART_NAMES[part], at, str(exc.message or exc)))
    troubled = {p.part for p in problems}
    problems += _requirements(renderer, kind, locale, source, blanks, troubled)
    if source.html.strip() and len(source.html) <= MAX_PART_CHARS:
        problems += [Problem("html", line, msg) for line, msg in _html_problems(source.html)]
    order = list(PART_NAMES.values())
    # By part, then line; what has no line (a missing link) after what has one.
    return sorted(problems, key=lambda p: (order.index(p.part), p.line is None, p.line or 0))


def _requirements(
    renderer: Renderer,
    kind: EmailKind,
    locale: str,
    source: TemplateSource,
    blanks: dict[str, dict[str, Any]],
    troubled: set[str],
) -> list[Problem]:
    """Each part that parsed, rendered alone on the sample: its errors, and what it must show
    but does not. A name the part wrongly uses renders blank (it is reported already), so
    the rest of the part is still checked."""
    problems: list[Problem] = []
    context = kind.sample_context()
    for part, extra in blanks.items():
        label = PART_NAMES[part]
        values = {**context, **extra}
        try:
            rendered = renderer.render_part(kind.key, locale, part, values, source)
        except TemplateError as exc:
            if label not in troubled:  # a problem of the part already explains the failure
                problems.append(Problem(label, exc.line, exc.message))
            continue
        # What the reader sees: HTML comments do not count as showing anything.
        shown = rendered if part != "html" else html.unescape(_COMMENTS.sub("", rendered))
        for requirement in kind.requires:
            if part in requirement.parts and requirement.sample_value(context) not in shown:
                message = f"must show {{{{ {requirement.what} }}}} ({kind.key} requires it)"
                problems.append(Problem(label, None, message))
    return problems


_SILENT = (
    nodes.Extends,
    nodes.Block,
    nodes.Macro,
    nodes.Import,
    nodes.FromImport,
    nodes.Assign,
    nodes.AssignBlock,
)


def _outside_blocks(part: str, tree: nodes.Template) -> list[Problem]:
    """Text after ``{% extends %}`` outside any block: Jinja drops it without a word."""
    problems: list[Problem] = []
    extended = False
    for node in tree.body:
        if isinstance(node, nodes.Extends):
            extended = True
        if not extended or isinstance(node, _SILENT):
            continue
        for output in [node] if isinstance(node, nodes.Output) else node.find_all(nodes.Output):
            line = _first_shown_line(output)
            if line is not None:
                problems.append(Problem(part, line, "outside any block: it would never be shown"))
    return problems


def _first_shown_line(output: nodes.Output) -> int | None:
    """The line of the first thing an output node would print, or None if only blanks."""
    for child in output.nodes:
        if not isinstance(child, nodes.TemplateData):
            return child.lineno
        stripped = child.data.lstrip()
        if stripped:
            return child.lineno + child.data[: len(child.data) - len(stripped)].count("\n")
    return None


def _unknown_names(
    kind: EmailKind, part: str, tree: nodes.Template
) -> tuple[list[Problem], dict[str, Any]]:
    """The names and fields the part uses that the key does not provide, and blank values
    for them, over the sample, so that the part can still be rendered."""
    provided = set(kind.variables) | {"locale"}
    problems = []
    blanks: dict[str, Any] = {}
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
        blanks[name] = jinja2.ChainableUndefined(name=name)  # prints "", has every field
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
                known = blanks.setdefault(node.node.name, dict(fields))
                if isinstance(known, dict):
                    known[node.attr] = ""
    return problems, blanks


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
