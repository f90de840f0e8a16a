"""Every relative Markdown link in README.md and docs/ points to a file that exists and, when it
names an anchor, to a heading of that file (anchors as GitHub makes them from headings)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t#]*$", re.MULTILINE)
_EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)


def _prose(text: str) -> str:
    """The text outside fenced code blocks (where links and headings are Markdown)."""
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for heading in _HEADING.findall(_prose(path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(path: Path) -> list[str]:
    text = _CODE_SPAN.sub("", _prose(path.read_text(encoding="utf-8")))
    return [target for target in _LINK.findall(text) if not _EXTERNAL.match(target)]


def broken(path: Path) -> list[str]:
    """The links of ``path`` that lead nowhere, each with why."""
    problems = []
    for target in links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / unquote(file_part)).resolve() if file_part else path
        if not linked.exists():
            problems.append(f"{target}: no such file")
        elif anchor and (linked.suffix != ".md" or unquote(anchor) not in anchors(linked)):
            problems.append(f"{target}: no such heading")
    return problems


def test_slugs_follow_github() -> None:
    assert slug("Where this differs from the original specification") == (
        "where-this-differs-from-the-original-specification"
    )
    assert slug("`mailflow sellers stats`") == "mailflow-sellers-stats"
    assert slug("`[server]`") == "server"
    assert slug("### Tier emails: `seller`, `rate`".lstrip("# ")) == "tier-emails-seller-rate"
    assert slug("`seller_rate_warning`") == "seller_rate_warning"


def test_the_checker_finds_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#a-section) [self](#page) [web](https://example.org/x)\n"
        "[gone](missing.md) [no anchor](other.md#nowhere) `[code](ignored.md)`\n"
        "```\n[fenced](ignored.md)\n```\n",
        encoding="utf-8",
    )
    assert broken(page) == ["missing.md: no such file", "other.md#nowhere: no such heading"]


def test_the_pages_have_links_to_check() -> None:
    assert (ROOT / "docs" / "README.md") in PAGES
    assert sum(len(links(page)) for page in PAGES) > 50


def test_every_relative_link_resolves() -> None:
    problems = [
        f"{page.relative_to(ROOT)}: {problem}" for page in PAGES for problem in broken(page)
    ]
    assert problems == []
