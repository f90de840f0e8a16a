"""Every email of the catalogue, in every locale, as sent, in a real headless Chromium: in the
light and the dark colour scheme (``prefers-color-scheme``, as Apple Mail and Outlook's apps
apply it), with a screenshot of each. axe-core finds no serious or critical violation (every
rule in the light scheme, the contrast rule again in the dark one); the dark scheme really is
dark; and the light design keeps enough contrast when a client inverts it on its own (as the
Gmail app and Outlook's dark modes do): every text's colour and background, inverted, still
reach WCAG AA.

One browser and one page serve every check (``page.set_content``), so the whole run takes a
few seconds. The screenshots go to a temporary folder; those of ``seller_new_sale`` in French
also to ``--screenshots`` (``email-seller_new_sale-fr-light.png`` and ``-dark.png``, which
docs/emails.md shows).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.emails import SentEmail, sent_emails
from tests.support import AXE, AXE_FAILS_ON

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

SCHEMES = ("light", "dark")
DOCUMENTED = ("seller_new_sale", "fr")
WIDTH = 640

# Every element with text of its own: its colour, the background it is drawn on (the first
# ancestor with an opaque one; the canvas otherwise), and whether it is large text (WCAG).
TEXT_COLOURS = """
(canvas) => {
  const rgb = (value) => {
    const m = value.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const [r, g, b, a] = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return { rgb: [r, g, b], alpha: a === undefined ? 1 : a };
  };
  const background = (el) => {
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const c = rgb(getComputedStyle(node).backgroundColor);
      if (c && c.alpha > 0.5) return c.rgb;
    }
    return canvas;
  };
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const style = getComputedStyle(el);
    const size = parseFloat(style.fontSize);
    const bold = Number(style.fontWeight) >= 700;
    found.push({
      text: el.textContent.trim().slice(0, 40),
      tag: el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''),
      colour: rgb(style.color).rgb,
      background: background(el),
      large: size >= 24 || (bold && size >= 18.66),
    });
  }
  return found;
}
"""

SCHEME_COLOURS = """
() => {
  const box = document.querySelector('.container') || document.body;
  const text = document.querySelector('.content') || document.body;
  return [getComputedStyle(box).backgroundColor, getComputedStyle(text).color];
}
"""


def luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def inverted(rgb: list[float]) -> list[float]:
    return [255 - c for c in rgb[:3]]


def parse_rgb(value: str) -> list[float]:
    inside = value[value.index("(") + 1 : value.index(")")]
    return [float(part) for part in inside.replace("/", " ").replace(",", " ").split()[:3]]


@pytest.fixture(scope="module")
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": WIDTH, "height": 300}, locale="fr-FR")
    tab = context.new_page()
    try:
        yield tab
    finally:
        context.close()


def axe(page: Page, email: SentEmail, scheme: str) -> list[str]:
    if not AXE.is_file():
        pytest.fail(f"axe-core is missing ({AXE}): run `npm ci` at the repository's top")
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))
    # Only colours change between the schemes: the dark one needs the contrast rule alone.
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if scheme == "dark":
        options["runOnly"] = ["color-contrast"]
    results = page.evaluate("(options) => axe.run(document, options)", options)
    return [
        f"{email.name} ({scheme}): {v['id']} ({v['impact']}): {v['help']}: "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"])
        for v in results["violations"]
        if v["impact"] in AXE_FAILS_ON
    ]


def inversion_problems(page: Page, email: SentEmail) -> list[str]:
    problems = []
    for item in page.evaluate(TEXT_COLOURS, [255, 255, 255]):
        needed = 3.0 if item["large"] else 4.5
        after = contrast(inverted(item["colour"]), inverted(item["background"]))
        if after < needed:
            problems.append(
                f"{email.name}: {item['tag']} {item['text']!r}: contrast {after:.2f} once "
                f"inverted (needs {needed})"
            )
    return problems


def scheme_problems(page: Page, email: SentEmail, scheme: str) -> list[str]:
    box, text = (parse_rgb(v) for v in page.evaluate(SCHEME_COLOURS))
    dark = luminance(box) < 0.05 and luminance(text) > 0.5
    light = luminance(box) > 0.8 and luminance(text) < 0.1
    if (scheme == "dark" and dark) or (scheme == "light" and light):
        return []
    return [f"{email.name}: not a {scheme} design (box {box}, text {text})"]


def test_every_email_in_light_and_dark(
    page: Page, screenshots: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    emails = sent_emails()
    shots = tmp_path_factory.mktemp("email-screenshots")
    found: list[str] = []
    pictures: dict[tuple[str, str], bytes] = {}
    for scheme in SCHEMES:
        page.emulate_media(color_scheme=scheme)
        for email in emails:
            page.set_content(email.html, wait_until="load")
            name = f"email-{email.key}-{email.locale}-{scheme}.png"
            pictures[(email.name, scheme)] = page.screenshot(path=shots / name, full_page=True)
            if (email.key, email.locale) == DOCUMENTED:
                (screenshots / name).write_bytes(pictures[(email.name, scheme)])
            found += scheme_problems(page, email, scheme)
            found += axe(page, email, scheme)
            if scheme == "light":
                found += inversion_problems(page, email)
    same = [e.name for e in emails if pictures[(e.name, "light")] == pictures[(e.name, "dark")]]
    assert same == [], f"the same picture in both schemes: {same}"
    assert found == []


def test_the_checks_see_a_design_that_does_not_survive(page: Page) -> None:
    # Light grey on white: fine for nobody, and worse inverted; a dark scheme that is not.
    html = (
        '<!DOCTYPE html><html lang="en"><head><title>t</title></head><body>'
        '<table role="presentation" class="container" style="background:#ffffff">'
        '<tr><td class="content" style="color:#bbbbbb">Pale text</td></tr></table>'
        "</body></html>"
    )
    email = _fake("pale", html)
    page.emulate_media(color_scheme="dark")
    page.set_content(html)
    assert scheme_problems(page, email, "dark")
    assert any("color-contrast" in line for line in axe(page, email, "dark"))
    assert inversion_problems(page, email)
    page.emulate_media(color_scheme="light")


def _fake(key: str, html: str) -> Any:
    from datetime import UTC, datetime

    from mailflow.mail.compose import compose

    raw = compose(
        sender="a@example.org",
        recipient="b@example.org",
        subject="t",
        text="t",
        html=html,
        message_id="<1@example.org>",
        date=datetime(2026, 11, 26, tzinfo=UTC),
        template=key,
    )
    return SentEmail(key, "en", raw)
