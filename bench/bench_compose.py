"""Composition speed: mailflow's render + compose against the standard library's builder.

    python bench/bench_compose.py [--messages 5000] [--repeat 3] [--locale en]

mailflow path, per message: three signed action links (``LinkSigner.sale_token``, as
``ServiceContext.action_url`` makes them), ``Renderer.render("seller_new_sale", ...)`` with the
context ``notify`` gives that template, then ``mailflow.mail.compose.compose`` -> bytes.

baseline, per message: the same already-rendered subject, text and HTML (rendered beforehand,
outside the timing) built with ``email.message.EmailMessage`` (``policy.SMTP``, CRLF as on
the wire): the same headers, ``set_content(text)``, ``add_alternative(html, subtype="html")``,
``as_bytes()``.

Also timed, to show where the mailflow path's time goes: the links alone, the render alone,
and ``compose`` alone on the pre-rendered content (the like-for-like comparison with the
baseline). DKIM signing (``mailflow.mail.dkim.DkimSigner.sign``, as the outbox calls it when
``[smtp] dkim_*`` is set) is timed alone on composed messages, with a 2048-bit RSA key
(``rsa-sha256``) and with an Ed25519 key, and as part of the whole path (RSA); the keys are
generated before timing, and one signed message of each is verified with dkimpy first. Its
floor: dkimpy's one-call ``dkim.sign()`` on the same composed bytes (no more work than the
signature itself); the signed path's baseline: the stdlib builder followed by ``dkim.sign()``.

Each rate is the median of ``--repeat`` timed loops (the best is printed beside it) after a
warm-up, by CPU time (``time.process_time``: the loops are single-threaded and
CPU-bound, so that is their cost whatever else runs on the machine); the median by wall time
is printed too, and the ratio is given for both. Before timing, one message of each kind is
parsed back with the standard parser and checked to carry the same subject, text and HTML.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import dkim

from mailflow.links import LinkSigner
from mailflow.mail.compose import address, compose, new_message_id, split_address
from mailflow.mail.dkim import DkimKey, DkimSigner, dns_record, generate_key
from mailflow.mail.templates import RenderedEmail, Renderer, templates_root

KEY = "seller_new_sale"
BASE_URL = "http://mailflow.test"
SECRET = "bench-secret-" + "k" * 40
FROM = "Marketplace <no-reply@marketplace.example>"
GOAL = 2.0
POOL = 64  # distinct pre-rendered messages the baseline and compose-only loops cycle through


class Setup:
    def __init__(self, locale: str) -> None:
        self.locale = locale
        self.renderer = Renderer(templates_root(), "Europe/Paris")
        self.signer = LinkSigner([SECRET], 336 * 3600)
        name, self.sender_addr = split_address(FROM)
        self.sender = address(name, self.sender_addr)
        self.now = datetime.now(UTC)

    def links(self, sale_id: int) -> dict[str, str]:
        return {
            action: f"{BASE_URL}/s/{self.signer.sale_token(sale_id, action)}"
            for action in ("accept", "refuse", "view")
        }

    def context(self, sale_id: int, links: dict[str, str]) -> dict[str, Any]:
        """What ``notify.sale_context`` plus the links give ``seller_new_sale``."""
        quantity = 1 + sale_id % 3
        unit = 1990 + 10 * (sale_id % 50)
        seller = 1 + sale_id % 97
        return {
            "sale": {
                "id": sale_id,
                "title": f"Vintage Leica M6 camera body no. {sale_id}",
                "sku": f"SKU-{sale_id:08d}",
                "quantity": quantity,
                "unit_price_cents": unit,
                "amount_cents": unit * quantity,
                "currency": "EUR",
                "status": "pending",
                "reason": None,
                "message": None,
                "created_at": self.now,
                "deadline": self.now + timedelta(hours=48),
            },
            "order": {"id": 100_000 + sale_id, "external_id": f"ORD-2026-{sale_id:07d}"},
            "seller": {
                "id": seller,
                "name": f"Brocante du Marais {seller}",
                "email": f"seller{seller}@sellers.example",
            },
            "buyer": {"name": "Camille Dupont", "email": "camille.dupont@buyers.example"},
            "links": links,
        }

    def recipient(self, sale_id: int) -> str:
        seller = 1 + sale_id % 97
        return address(f"Brocante du Marais {seller}", f"seller{seller}@sellers.example")

    def render(self, sale_id: int) -> RenderedEmail:
        return self.renderer.render(KEY, self.locale, self.context(sale_id, self.links(sale_id)))

    # -- the measured paths -------------------------------------------------------------

    def mailflow(self, sale_id: int) -> bytes:
        rendered = self.render(sale_id)
        return self.compose_only(sale_id, rendered)

    def mailflow_signed(self, sale_id: int, signer: DkimSigner) -> bytes:
        return signer.sign(self.mailflow(sale_id))

    def compose_only(self, sale_id: int, rendered: RenderedEmail) -> bytes:
        return compose(
            sender=self.sender,
            recipient=self.recipient(sale_id),
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            message_id=new_message_id(self.sender_addr),
            date=self.now,
            template=KEY,
        )

    def stdlib(self, sale_id: int, rendered: RenderedEmail) -> bytes:
        msg = EmailMessage(policy=policy.SMTP)
        msg["From"] = self.sender
        msg["To"] = self.recipient(sale_id)
        msg["Subject"] = rendered.subject
        msg["Date"] = format_datetime(self.now)
        msg["Message-ID"] = new_message_id(self.sender_addr)
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Mailflow-Template"] = KEY
        msg.set_content(rendered.text)
        msg.add_alternative(rendered.html, subtype="html")
        return msg.as_bytes()


def parts(raw: bytes) -> tuple[str, str, str]:
    msg = message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None

    def norm(s: str) -> str:
        return s.replace("\r\n", "\n").rstrip("\n")

    return str(msg["Subject"]), norm(text.get_content()), norm(html.get_content())


def rate(fn: Callable[[int], object], n: int, repeat: int) -> tuple[float, float, float]:
    """Calls per second over ``repeat`` loops of ``n`` calls, after a warm-up.

    Returns (median by CPU time, best by CPU time, median by wall time). The loops are
    single-threaded and CPU-bound, so their CPU time is their cost whatever else runs on the
    machine; wall time also counts the time other processes had the CPU.
    """
    for i in range(min(200, n)):
        fn(i)
    cpu_rates, wall_rates = [], []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        for i in range(n):
            fn(i)
        cpu_rates.append(n / (time.process_time() - c0))
        wall_rates.append(n / (time.perf_counter() - t0))
    return statistics.median(cpu_rates), max(cpu_rates), statistics.median(wall_rates)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--locale", default="en")
    args = parser.parse_args(argv)
    n = args.messages
    s = Setup(args.locale)

    pool = [s.render(i + 1) for i in range(POOL)]

    def pooled(i: int) -> RenderedEmail:
        return pool[i % POOL]

    ours, theirs = s.mailflow(1), s.stdlib(1, pool[0])
    if parts(ours) != parts(theirs):
        raise SystemExit("mailflow and stdlib messages differ once parsed back")
    signers = {}
    for algorithm in ("rsa", "ed25519"):
        key = DkimKey.from_pem(generate_key(algorithm))  # type: ignore[arg-type]
        signer = signers[algorithm] = DkimSigner("marketplace.example", "bench", key)
        record = dns_record(key).encode("ascii")
        if not dkim.verify(signer.sign(ours), dnsfunc=lambda name, timeout=5, r=record: r):
            raise SystemExit(f"a message signed with the {algorithm} key does not verify")
    composed = [s.compose_only(i + 1, pool[i]) for i in range(POOL)]
    rsa_pem = signers["rsa"].key.private
    print(
        f"compose bench: {KEY} ({args.locale}), {n} messages x {args.repeat} loops,"
        f" python {platform.python_version()}, {os.cpu_count()} CPUs,"
        f" load average {os.getloadavg()[0]:.2f}\n  parsed back: same subject, text and HTML"
        f" (mailflow {len(ours)} bytes, stdlib {len(theirs)} bytes)"
    )

    rows = [
        ("  links only (3 x sale_token)", lambda i: s.links(i + 1)),
        ("  render only (context + links + Renderer.render)", lambda i: s.render(i + 1)),
        ("  compose only, pre-rendered", lambda i: s.compose_only(i + 1, pooled(i))),
        ("mailflow path: links + render + compose", lambda i: s.mailflow(i + 1)),
        ("stdlib EmailMessage, pre-rendered", lambda i: s.stdlib(i + 1, pooled(i))),
        (
            "  DKIM sign only, rsa-sha256 2048 bits",
            lambda i: signers["rsa"].sign(composed[i % POOL]),
        ),
        (
            "  DKIM sign only, ed25519-sha256",
            lambda i: signers["ed25519"].sign(composed[i % POOL]),
        ),
        (
            "  floor: dkim.sign() alone, rsa-sha256",
            lambda i: dkim.sign(
                composed[i % POOL],
                b"bench",
                b"marketplace.example",
                rsa_pem,
                canonicalize=(b"relaxed", b"relaxed"),
            ),
        ),
        (
            "signed path: links + render + compose + DKIM rsa",
            lambda i: s.mailflow_signed(i + 1, signers["rsa"]),
        ),
        (
            "stdlib EmailMessage + dkim.sign(), pre-rendered",
            lambda i: dkim.sign(
                s.stdlib(i + 1, pooled(i)),
                b"bench",
                b"marketplace.example",
                rsa_pem,
                canonicalize=(b"relaxed", b"relaxed"),
            ),
        ),
    ]
    results: dict[str, tuple[float, float]] = {}
    for label, fn in rows:
        median, best, wall = rate(fn, n, args.repeat)
        results[label] = (median, wall)
        print(
            f"{label:<50} {median:7.0f} msg/s (best {best:7.0f})  {1e6 / median:6.1f} us/msg"
            f"  | wall {wall:7.0f} msg/s",
            flush=True,
        )
    full = results["mailflow path: links + render + compose"]
    std = results["stdlib EmailMessage, pre-rendered"]
    compose_only = results["  compose only, pre-rendered"]
    ratio = full[0] / std[0]
    print(
        f"ratio mailflow path / stdlib builder: {ratio:.2f}x (CPU-time medians;"
        f" wall-time medians {full[1] / std[1]:.2f}x)  goal >= {GOAL:.0f}x:"
        f" {'MET' if ratio >= GOAL else 'NOT MET'}\n"
        f"like for like, compose only / stdlib builder: {compose_only[0] / std[0]:.1f}x;"
        f" load average {os.getloadavg()[0]:.2f}"
    )
    signed = results["signed path: links + render + compose + DKIM rsa"]
    signed_std = results["stdlib EmailMessage + dkim.sign(), pre-rendered"]
    rsa_cost = 1e6 / results["  DKIM sign only, rsa-sha256 2048 bits"][0]
    floor = 1e6 / results["  floor: dkim.sign() alone, rsa-sha256"][0]
    ed_cost = 1e6 / results["  DKIM sign only, ed25519-sha256"][0]
    print(
        f"DKIM: the signed path costs {1e6 / signed[0]:.0f} us/msg against {1e6 / full[0]:.0f}"
        f" unsigned ({full[0] / signed[0]:.1f}x); signing alone {rsa_cost:.0f} us (rsa-sha256)"
        f" = {100 * rsa_cost * signed[0] / 1e6:.0f}% of the signed path; ed25519-sha256"
        f" {ed_cost:.0f} us\n"
        f"signing / its floor (dkimpy's dkim.sign() on the same bytes): {rsa_cost / floor:.2f}x"
        f" the cost\n"
        f"ratio signed path / stdlib builder + dkim.sign(): {signed[0] / signed_std[0]:.2f}x"
        f" (CPU-time medians; wall-time medians {signed[1] / signed_std[1]:.2f}x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
