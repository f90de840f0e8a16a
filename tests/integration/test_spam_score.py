"""Every email key, rendered with its sample context in fr and en, scores under 1 point with
SpamAssassin's local rules, and is sent as inlined HTML plus a real text part.

Each message is the one the worker sends (``Renderer.render`` then ``compose``) and is scored
by ``spamassassin -L -t``, fully offline and deterministically:

* ``-L``: local tests only (no DNS blocklists, no URIBL, no SPF/DKIM lookups);
* ``-C /usr/share/spamassassin``: the rules shipped in the Debian package. Without it
  SpamAssassin reads ``/var/lib/spamassassin/<version>/`` when that folder exists, and a failed
  ``sa-update`` (it needs DNS and HTTP, so it fails offline) leaves it empty: every run then
  stops with "no rules were found". Pinning the shipped rules also keeps the scores from
  changing whenever ``sa-update`` does work. The site configuration (``/etc/spamassassin``)
  stays in use: its ``.pre`` files load the plugins many rules depend on;
* ``use_bayes 0`` and ``bayes_auto_learn 0``: no Bayes database, so no learning from one run
  to the next (auto-learn would otherwise feed each message into ``~/.spamassassin`` and,
  once enough are learnt, move the scores); ``-x -p <empty file>`` and a temporary ``HOME``
  keep SpamAssassin from reading or writing the user's preferences.

SpamAssassin spends ~1.2 s of CPU loading its rules and ~0.1 s a message, so the messages are
split into one batch per CPU, each scored by one ``spamassassin`` process (several files on its
command line), the processes running in parallel from a thread pool. Under CI (``CI=true``)
a missing ``spamassassin`` fails the run; elsewhere the scoring tests are skipped
(``apt-get install spamassassin``).
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mailflow.mail.catalog import KINDS
from mailflow.mail.compose import address, compose, new_message_id
from mailflow.mail.templates import Renderer, templates_root

LOCALES = ("fr", "en")
CASES = [(key, locale) for key in KINDS for locale in LOCALES]
MAX_SCORE = 1.0
SENDER = ("Marketplace", "no-reply@marketplace.example")
SUPPORT = ("Service client", "support@marketplace.example")
SHIPPED_RULES = Path("/usr/share/spamassassin")
TIMEOUT = 300  # seconds for one spamassassin process (a batch of messages)
TAG = re.compile(r"</?[A-Za-z][^>]*>")
SPLIT = re.compile(r"^(?=X-Spam-Checker-Version:)", re.M)  # where each scored message starts
STATUS = re.compile(r"score=(?P<score>-?\d+(?:\.\d+)?)\b.*?\btests=(?P<tests>\S*)", re.S)

Case = tuple[str, str]  # (key, locale)


@dataclass(frozen=True)
class Score:
    score: float
    tests: list[str]
    report: str  # SpamAssassin's "Content analysis details": each rule hit, its points


def has_templates(key: str, locale: str) -> bool:
    folder = templates_root() / "email" / locale
    return all((folder / f"{key}.{part}.j2").is_file() for part in ("subject", "txt", "html"))


def message(key: str, locale: str, message_id: str | None = None) -> bytes:
    """The whole message the worker would send for ``key`` with its sample context."""
    kind = KINDS[key]
    context = kind.sample_context()
    rendered = Renderer(templates_root(), "Europe/Paris").render(key, locale, context)
    person = context.get(kind.to)
    recipient = address(person["name"], person["email"]) if person else address(*SUPPORT)
    return compose(
        sender=address(*SENDER),
        recipient=recipient,
        subject=rendered.subject,
        text=rendered.text,
        html=rendered.html,
        message_id=message_id or new_message_id(SENDER[1]),
        date=datetime.now(UTC),
        template=key,
    )


def spamassassin_command(binary: str, prefs: Path) -> list[str]:
    command = [binary, "-L", "-t", "-x", "-p", str(prefs)]
    command += ["--cf=use_bayes 0", "--cf=bayes_auto_learn 0"]
    if any(SHIPPED_RULES.glob("*.cf")):
        command += ["-C", str(SHIPPED_RULES)]
    return command


def parse_result(out: str) -> tuple[str, Score]:
    """The Message-ID and score of one message as ``spamassassin -t`` prints it back."""
    headers = email.message_from_string(out.split("\n\n", 1)[0] + "\n\n")
    status, message_id = headers["X-Spam-Status"], headers["Message-ID"]
    assert status and message_id, f"no X-Spam-Status or Message-ID in: {out[:500]}"
    # The header is folded after commas: "tests=A,B,\n\tC autolearn=...".
    found = STATUS.search(re.sub(r",\s+", ",", " ".join(status.split())))
    assert found, f"no score in X-Spam-Status: {status}"
    report = out.rpartition("Content analysis details:")[2].split("\n\n", 2)
    return message_id.strip(), Score(
        score=float(found["score"]),
        tests=[t for t in found["tests"].split(",") if t and t != "none"],
        report="\n".join(report[:2]).strip(),
    )


def score_batch(command: list[str], home: Path, batch: list[Case]) -> dict[Case, Score | str]:
    """Score ``batch`` in one spamassassin process (it loads its rules once, ~1.2 s of CPU,
    then takes ~0.1 s a message). Each case gets its score, or why it could not be scored."""
    ids: dict[str, Case] = {}
    paths = []
    try:
        for key, locale in batch:
            message_id = new_message_id(SENDER[1])
            ids[message_id] = (key, locale)
            path = home / f"{key}.{locale}.eml"
            path.write_bytes(message(key, locale, message_id))
            paths.append(str(path))
        done = subprocess.run(
            [*command, *paths],
            capture_output=True,
            timeout=TIMEOUT,
            env={**os.environ, "HOME": str(home)},
            check=False,
        )
        if done.returncode != 0:
            stderr = done.stderr.decode("utf-8", "replace")[-2000:]
            raise RuntimeError(f"spamassassin exited with {done.returncode}: {stderr}")
        # The report quotes the body as SpamAssassin decoded it, not always as UTF-8.
        out = done.stdout.decode("utf-8", "replace").replace("\r\n", "\n")
        results: dict[Case, Score | str] = {}
        for chunk in SPLIT.split(out)[1:]:
            message_id, result = parse_result(chunk)
            results[ids[message_id]] = result
        for case in batch:
            results.setdefault(case, "spamassassin printed no result for it")
        return results
    except Exception as exc:
        return dict.fromkeys(batch, f"{type(exc).__name__}: {exc}")


@pytest.fixture(scope="module")
def scores(tmp_path_factory: pytest.TempPathFactory) -> dict[Case, Score | str]:
    """Every case with templates, scored once: one spamassassin process per CPU, in parallel."""
    binary = shutil.which("spamassassin")
    if binary is None:
        reason = "spamassassin is not installed (apt-get install spamassassin)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}: it is required under CI")
        pytest.skip(reason)
    home = tmp_path_factory.mktemp("sa-home")
    prefs = home / "user_prefs"
    prefs.write_text("")
    command = spamassassin_command(binary, prefs)
    cases = [case for case in CASES if has_templates(*case)]
    workers = min(len(cases), max(2, os.cpu_count() or 2))
    batches = [cases[i::workers] for i in range(workers)]
    started = time.monotonic()
    scored: dict[Case, Score | str] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for results in pool.map(lambda batch: score_batch(command, home, batch), batches):
            scored.update(results)
    elapsed = time.monotonic() - started
    print(f"\nspamassassin scored {len(cases)} messages in {elapsed:.1f} s ({workers} processes)")
    for (key, locale), result in sorted(scored.items()):
        shown = (
            f"{result.score:5.1f} {','.join(result.tests)}" if isinstance(result, Score) else result
        )
        print(f"  {key:28} {locale} {shown}")
    return scored


@pytest.mark.parametrize(("key", "locale"), CASES)
def test_spamassassin_score_is_under_one_point(
    scores: dict[Case, Score | str], key: str, locale: str
) -> None:
    if (key, locale) not in scores:
        pytest.fail(f"{key} has no template files in {locale}: nothing to score")
    result = scores[key, locale]
    if isinstance(result, str):
        pytest.fail(f"{key} ({locale}) could not be scored: {result}")
    assert result.score < MAX_SCORE, (
        f"{key} ({locale}) scores {result.score} (rules: {', '.join(result.tests)})\n"
        f"{result.report}"
    )


class Elements(HTMLParser):
    """Each start tag with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))


def parts(raw: bytes) -> dict[str, str]:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert parsed.get_content_type() == "multipart/alternative"
    found = {part.get_content_type(): part.get_content() for part in parsed.iter_parts()}
    assert set(found) == {"text/plain", "text/html"}, set(found)
    return found


@pytest.mark.parametrize(("key", "locale"), CASES)
def test_html_is_inlined_and_text_is_text(key: str, locale: str) -> None:
    if not has_templates(key, locale):
        pytest.fail(f"{key} has no template files in {locale}")
    sent = parts(message(key, locale))
    html, text = sent["text/html"], sent["text/plain"]

    # Only the dark mode's rules stay in a <style> element (they cannot be inlined).
    kept = re.findall(r"<style\b[^>]*>(.*?)</style>", html, re.I | re.S)
    assert [rules.split("{", 1)[0].strip() for rules in kept] == [
        "@media (prefers-color-scheme: dark)"
    ], "a <style> element other than the dark mode's is left in the HTML"
    parser = Elements()
    parser.feed(html)
    parser.close()
    styled = [tag for tag, attrs in parser.elements if attrs.get("style")]
    assert "body" in styled, "the CSS was not inlined into <body>"
    unstyled = [
        (tag, attrs["class"])
        for tag, attrs in parser.elements
        if attrs.get("class") and not attrs.get("style")
    ]
    assert not unstyled, f"elements whose class was not inlined: {unstyled}"

    assert text.strip(), "the text part is empty"
    assert not TAG.search(text), f"HTML in the text part: {TAG.search(text)}"
