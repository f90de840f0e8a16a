"""The inbound SMTP server: messages per second into it, and clicks while it is flooded.

    python bench/bench_inbound.py [--db sqlite,postgres] [--messages 2000] [--connections 16]
                                  [--clicks 600] [--flood 64]

1. **Intake.** One load client (a process of its own: asyncio streams, plain SMTP, no
   pipelining) sends ``--messages`` RFC 3464 DSNs over ``--connections`` connections, first
   into the raw aiosmtpd sink of ``bench/_sink.py`` (accepts and counts, keeps nothing), then
   into mailflow's inbound server, run as ``mailflow inbound serve`` runs it in a process of
   its own. Every DSN names a real outbox row (``seller_new_sale`` of 400 orders from 200
   sellers, made before the clock starts), so each one goes the whole way: signature check at
   RCPT, the DSN read, and in one transaction committed before the ``250``: "bounces", the row
   marked bounced (``duplicate`` from the second time), the address suppressed, customer
   service's email rendered and queued (once per seller), the received message kept; then
   "delays", the same number of delayed DSNs, each noted in its row's history and kept.
   Printed: both rates and their ratio (goal ≥ 0.5×), p50/p99 of one message, the server's
   CPU per message.

2. **Clicks while flooded.** One process runs uvicorn and the inbound server on one event
   loop, as ``mailflow serve`` does. The click phase of ``bench/bench_http.py`` (``POST
   /s/<refuse token>`` on distinct pending sales, 16 keep-alive connections) runs quiet, then
   while a flood process keeps ``--flood`` SMTP connections busy with slow or garbage clients
   (a quarter trickle bytes slowly, a quarter send made-up recipients, a quarter send lines
   that are no SMTP, a quarter send messages of random bytes to signed addresses as fast as
   they are answered, each kept with its verdict), then quiet again. Printed: clicks per
   second and p99 flooded against the mean of the two quiet runs around it (the floor,
   measured in the same run), what the flood got done and its own CPU (on a small machine
   it takes cores from the server too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import bench_http
from _sink import Sink

DOMAIN = "bounces.bench"
GOAL_INTAKE = 0.5
_TICK = os.sysconf("SC_CLK_TCK")


def settings_for(db_url: str, http_port: int, smtp_port: int) -> Any:
    from mailflow.config import Settings

    data = bench_http.settings_for(db_url, http_port).model_dump()
    data["inbound"] = {
        "enabled": True,
        "domain": DOMAIN,
        "port": smtp_port,
        "max_sessions": 1000,
        "timeout_seconds": 30,
    }
    return Settings.model_validate(data)


def dsn(to: str, recipient: str, n: int, action: str = "failed") -> bytes:
    boundary = f"b{n}"
    return (
        f"From: MAILER-DAEMON@relay.example\r\nTo: {to}\r\n"
        f"Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn{n}@relay.example>\r\n"
        "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/report; report-type=delivery-status; boundary="{boundary}"\r\n'
        f"\r\n--{boundary}\r\nContent-Type: text/plain\r\n\r\n"
        + "Your message could not be delivered to one or more recipients.\r\n"
        * 8
        + f"\r\n--{boundary}\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; relay.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: {action}\r\n"
        f"Status: {'5.1.1' if action == 'failed' else '4.4.7'}\r\n"
        f"Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: User unknown\r\n"
        f"\r\n--{boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        "Subject: Nouvelle vente\r\nMessage-ID: <orig@marketplace.example>\r\n"
        f"\r\n--{boundary}--\r\n"
    ).encode()


# -- the SMTP load client (its own process) ------------------------------------------------


async def _reply(reader: asyncio.StreamReader) -> int:
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("closed")
        if line[3:4] != b"-":
            return int(line[:3])


async def _smtp_load(spec: dict[str, Any]) -> tuple[list[float], int, float]:
    messages = [(m["to"], m["data"].encode("latin-1")) for m in spec["messages"]]
    latencies: list[float] = []
    failures = 0
    next_index = 0

    async def run() -> None:
        nonlocal next_index, failures
        reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
        await _reply(reader)
        writer.write(b"EHLO load.bench\r\n")
        await _reply(reader)
        while next_index < len(messages):
            to, data = messages[next_index]
            next_index += 1
            t0 = time.perf_counter()
            writer.write(b"MAIL FROM:<>\r\n")
            ok = await _reply(reader) == 250
            writer.write(f"RCPT TO:<{to}>\r\n".encode())
            ok = await _reply(reader) == 250 and ok
            writer.write(b"DATA\r\n")
            ok = await _reply(reader) == 354 and ok
            writer.write(data + b".\r\n")
            ok = await _reply(reader) == 250 and ok
            latencies.append(time.perf_counter() - t0)
            failures += not ok
        writer.write(b"QUIT\r\n")
        await _reply(reader)
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(spec["connections"])))
    return latencies, failures, time.perf_counter() - t0


def _load_started() -> float:
    return time.time()


def _load_main(spec: dict[str, Any]) -> None:
    cpu0 = time.process_time()
    started = _load_started()
    latencies, failures, seconds = asyncio.run(_smtp_load(spec))
    latencies.sort()
    n = len(latencies)
    print(
        json.dumps(
            {
                "messages": n,
                "seconds": seconds,
                "p50": latencies[n // 2] * 1000,
                "p99": latencies[min(n - 1, int(n * 0.99))] * 1000,
                "failures": failures,
                "cpu": time.process_time() - cpu0,
                "started": started,
            }
        ),
        flush=True,
    )


def run_smtp_load(spec: dict[str, Any], work: Path) -> dict[str, Any]:
    path = work / f"spec-{secrets.token_hex(3)}.json"
    path.write_text(json.dumps(spec))
    out = subprocess.run(
        [sys.executable, __file__, "--smtp-load", str(path)],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


# -- the flood (its own process) -----------------------------------------------------------


async def _flood(spec: dict[str, Any]) -> None:
    host, port, n = spec["host"], spec["port"], spec["connections"]
    dsns = [(m["to"], m["data"].encode("latin-1")) for m in spec["messages"]]
    done = {"kept": 0, "refused": 0, "garbage": 0, "trickled": 0}

    async def junk(i: int) -> None:
        """Messages of random bytes, as fast as they are answered, to a signed address."""
        rng = random.Random(i)
        bodies = []
        for _ in range(20):
            body = rng.randbytes(rng.randrange(2000)).replace(b"\r", b"").replace(b"\n", b"\r\n")
            bodies.append(body.replace(b"\r\n.", b"\r\n.."))
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                await _reply(reader)
                writer.write(b"HELO flood\r\n")
                await _reply(reader)
                while True:
                    to = dsns[rng.randrange(len(dsns))][0]
                    body = bodies[rng.randrange(len(bodies))]
                    writer.write(f"MAIL FROM:<>\r\nRCPT TO:<{to}>\r\nDATA\r\n".encode())
                    for _ in range(3):
                        await _reply(reader)
                    writer.write(body + b"\r\n.\r\n")
                    done["kept"] += await _reply(reader) == 250
            except (ConnectionError, OSError, ValueError):
                await asyncio.sleep(0.05)

    async def garbage(i: int) -> None:
        """Commands that are no SMTP at all."""
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                await _reply(reader)
                while True:
                    writer.write(b"\x16\x03\x01 GET / HTTP/1.1 \xff\xfe\r\n")
                    done["garbage"] += await _reply(reader) >= 500
            except (ConnectionError, OSError, ValueError):
                await asyncio.sleep(0.05)

    async def made_up(i: int) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                await _reply(reader)
                writer.write(b"HELO flood\r\nMAIL FROM:<spam@flood.example>\r\n")
                await _reply(reader)
                await _reply(reader)
                while True:
                    writer.write(f"RCPT TO:<bounce+{i}-aaaaaaaaaaaaaaaa@{DOMAIN}>\r\n".encode())
                    done["refused"] += await _reply(reader) == 550
                    writer.write(b"RSET\r\nMAIL FROM:<spam@flood.example>\r\n")
                    await _reply(reader)
                    await _reply(reader)
            except (ConnectionError, OSError, ValueError):
                await asyncio.sleep(0.05)

    async def trickle(i: int) -> None:
        while True:
            try:
                reader, writer = await asyncio.open_connection(host, port)
                await _reply(reader)
                for byte in b"HELO a-very-slow-client.flood.example\r\n" * 1000:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    done["trickled"] += 1
                    await asyncio.sleep(0.05)
            except (ConnectionError, OSError, ValueError):
                await asyncio.sleep(0.05)

    q = n // 4
    kinds = [junk] * q + [made_up] * q + [garbage] * q + [trickle] * (n - 3 * q)
    tasks = [asyncio.create_task(kind(i)) for i, kind in enumerate(kinds)]
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.done() or stop.set_result(None))
    await stop
    for task in tasks:
        task.cancel()
    print(json.dumps({**done, "cpu": time.process_time()}), flush=True)


# -- the servers (their own processes) -----------------------------------------------------


def _serve_inbound(db_url: str, smtp_port: int) -> None:
    from mailflow import logs, runner
    from mailflow.bootstrap import build

    logs.configure()
    system = build(settings_for(db_url, 9, smtp_port))
    runner.run(runner.inbound_only(system, None, None))


def _serve_both(db_url: str, http_port: int, smtp_port: int) -> None:
    """uvicorn and the inbound server on one loop, as ``mailflow serve`` runs them."""
    import uvicorn

    from mailflow import logs, runner
    from mailflow.bootstrap import build
    from mailflow.inbound.processor_process import ProcessorProcess
    from mailflow.inbound.server import InboundServer
    from mailflow.web.app import create_app

    logs.configure()
    system = build(settings_for(db_url, http_port, smtp_port))

    async def main() -> None:
        inbound = InboundServer.of(system)
        await inbound.start()
        stop = asyncio.Event()
        processor = ProcessorProcess(system.settings, inbound.intake, system.telemetry)
        tasks = [
            asyncio.create_task(inbound.serve_until(stop)),
            asyncio.create_task(processor.run(stop)),
        ]
        try:
            await uvicorn.Server(bench_http.server_config(create_app(system), http_port)).serve()
        finally:
            stop.set()
            await asyncio.gather(*tasks)

    runner.run(main())


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit("the server did not start") from None
            time.sleep(0.1)


def _handled(url: str, started: float) -> float:
    """Wait until the spool is empty (every accepted message handled); seconds since
    ``started`` (a ``time.time()``)."""
    from mailflow.store import spool
    from mailflow.store.database import Database

    db = Database.from_url(url)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with db.read() as session:
                if not spool.count(session):
                    return time.time() - started
            time.sleep(0.01)
        raise SystemExit("the spool did not empty in 10 minutes")
    finally:
        db.dispose()


def _verdicts(url: str) -> dict[str, int]:
    from sqlalchemy import func, select

    from mailflow.store.database import Database
    from mailflow.store.models import InboundMessage

    db = Database.from_url(url)
    try:
        with db.read() as session:
            rows = session.execute(
                select(InboundMessage.verdict, func.count()).group_by(InboundMessage.verdict)
            ).all()
    finally:
        db.dispose()
    return {verdict: n for verdict, n in rows}


def _cpu_of(pid: int) -> float:
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def _stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# -- the run -------------------------------------------------------------------------------


def _seed(system: Any, sellers: int, orders: int, prefix: str) -> list[int]:
    """``sellers`` sellers and ``orders`` one-item orders; the sale ids."""
    from decimal import Decimal

    from mailflow.schemas import BuyerIn, ItemIn, OrderIn, SellerIn
    from mailflow.services import orders as order_service
    from mailflow.services import sellers as seller_service

    ids = [
        seller_service.create_seller(
            system.services,
            SellerIn(name=f"S{i}", email=f"{prefix}s{i}@sellers.example", locale="fr"),
        )["id"]
        for i in range(sellers)
    ]
    sales = []
    for n in range(orders):
        order = OrderIn(
            external_id=f"{prefix}-{n}",
            buyer=BuyerIn(name="B", email=f"{prefix}b{n % 50}@buyers.example", locale="fr"),
            items=[
                ItemIn(
                    seller_id=ids[n % sellers],
                    sku=f"{prefix}{n}",
                    title="Article",
                    quantity=1,
                    unit_price=Decimal("12.50"),
                )
            ],
        )
        sales += [
            s["id"] for s in order_service.place_order(system.services, order, None).body["sales"]
        ]
    return sales


def _dsns(system: Any, count: int, action: str = "failed") -> list[dict[str, str]]:
    """``count`` DSNs, round the seller emails in the outbox (marked sent first)."""
    from sqlalchemy import select, update

    from mailflow.store.models import OutboxMessage

    with system.db.transaction() as session:
        session.execute(update(OutboxMessage).values(status="sent"))
    with system.db.read() as session:
        rows = session.execute(
            select(OutboxMessage.id, OutboxMessage.recipient).where(
                OutboxMessage.template == "seller_new_sale"
            )
        ).all()
    book = system.services.addresses
    out = []
    for n in range(count):
        row_id, recipient = rows[n % len(rows)]
        to = book.bounce_address(row_id)
        out.append({"to": to, "data": dsn(to, recipient, n, action).decode("latin-1")})
    return out


def intake(kind: str, url: str, args: argparse.Namespace, work: Path) -> list[str]:
    from mailflow.bootstrap import build

    system = build(settings_for(url, 9, 9))
    try:
        _seed(system, 200, 400, "in")
        messages = _dsns(system, args.messages)
        delays = _dsns(system, args.messages, "delayed")
    finally:
        system.close()
    spec = {"host": "127.0.0.1", "connections": args.connections, "messages": messages}
    lines = []
    with Sink() as sink:
        run_smtp_load({**spec, "port": sink.port, "messages": messages[:200]}, work)  # warm-up
        sink.reset()
        raw = run_smtp_load({**spec, "port": sink.port}, work)
        stats = sink.stats()
    port = bench_http._free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-inbound", url, str(port)],
        stderr=(work / "inbound-intake.log").open("ab"),
    )
    try:
        _wait_port(port, server)
        # Warm-up, as for the sink: delayed DSNs (each a line of history), all handled.
        warm = run_smtp_load({**spec, "port": port, "messages": delays[:200]}, work)
        _handled(url, warm["started"])
        cpu0 = _cpu_of(server.pid)
        ours = run_smtp_load({**spec, "port": port}, work)
        ours["handled"] = _handled(url, ours["started"])
        cpu = _cpu_of(server.pid) - cpu0
        bounced = _verdicts(url)
        cpu0 = _cpu_of(server.pid)
        noted = run_smtp_load({**spec, "port": port, "messages": delays}, work)
        noted["handled"] = _handled(url, noted["started"])
        noted_cpu = _cpu_of(server.pid) - cpu0
        verdicts = _verdicts(url)
    finally:
        _stop(server)
    if raw["failures"] or ours["failures"] or noted["failures"] or stats.messages != len(messages):
        raise SystemExit(f"failures: sink {raw['failures']} ({stats.messages}), ours {ours}")
    n = len(messages)
    if (
        bounced.get("bounced", 0) + bounced.get("duplicate", 0) != n
        or verdicts.get("delayed") != n + 200
    ):
        raise SystemExit(f"not every message was handled as it should: {verdicts}")
    rate_raw = raw["messages"] / raw["seconds"]
    runs = (("sink", raw, stats.cpu_seconds), ("bounces", ours, cpu), ("delays", noted, noted_cpu))
    for label, r, server_cpu in runs:
        lines.append(
            f"  {label:<8} {r['messages']:>6} msg in {r['seconds']:6.2f} s = "
            f"{r['messages'] / r['seconds']:7.0f} msg/s"
            f"   p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms"
            f"   client CPU {r['cpu'] * 1000 / r['messages']:5.2f} ms/msg"
            + (
                f"   server CPU {server_cpu * 1000 / r['messages']:5.2f} ms/msg"
                + (
                    f"\n           all handled {r['handled']:.2f} s after the first was sent:"
                    f" {r['messages'] / r['handled']:.0f} msg/s handled (the processor's CPU"
                    " is its own process's, not counted above)"
                    if "handled" in r
                    else ""
                )
                if server_cpu is not None
                else ""
            )
        )
    lines.append(
        f"  verdicts: {bounced.get('bounced', 0)} bounced, {bounced.get('duplicate', 0)} "
        f"duplicate, {verdicts.get('delayed', 0)} delayed (200 of them the warm-up)"
    )
    for label, r in (("bounces", ours), ("delays", noted)):
        ratio = r["messages"] / r["seconds"] / rate_raw
        verdict = "ok" if ratio >= GOAL_INTAKE else "BELOW GOAL"
        lines.append(
            f"  {kind} intake ({label}): {ratio:.2f} × the raw sink (goal ≥ {GOAL_INTAKE}): "
            f"{verdict}"
        )
    return lines


def flooded_clicks(kind: str, url: str, args: argparse.Namespace, work: Path) -> list[str]:
    from mailflow.bootstrap import build

    system = build(settings_for(url, 9, 9))
    try:
        sales = _seed(system, 50, args.clicks * 3 + 200, "cl")
        messages = _dsns(system, 400)
        links = [f"/s/{system.signer.sale_token(s, 'refuse')}" for s in sales]
    finally:
        system.close()
    http_port, smtp_port = bench_http._free_port(), bench_http._free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-both", url, str(http_port), str(smtp_port)],
        stderr=(work / "inbound-flooded.log").open("ab"),
    )
    lines: list[str] = []
    try:
        _wait_port(http_port, server)
        _wait_port(smtp_port, server)
        used = 0

        def clicks(label: str, n: int) -> dict[str, Any]:
            nonlocal used
            path = work / f"links-{label}.txt"
            path.write_text("\n".join(links[used : used + n]) + "\n")
            used += n
            spec = {
                "client": "raw",
                "host": "127.0.0.1",
                "port": http_port,
                "kind": "click",
                "limit": n,
                "concurrency": 16,
                "prefix": label,
                "paths": str(path),
            }
            r = bench_http.run_load(spec)
            if r["failures"]:
                raise SystemExit(f"{label}: {r['failures']} failed clicks")
            r["rate"] = r["requests"] / r["seconds"]
            lines.append(
                f"  {label:<8} {r['requests']:>6} clicks in {r['seconds']:6.2f} s = "
                f"{r['rate']:6.0f} /s   p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms"
            )
            return r

        clicks("warm-up", 100)
        lines.clear()
        quiet1 = clicks("quiet", args.clicks)
        spec = {
            "host": "127.0.0.1",
            "port": smtp_port,
            "connections": args.flood,
            "messages": messages,
        }
        path = work / "flood.json"
        path.write_text(json.dumps(spec))
        flood = subprocess.Popen(
            [sys.executable, __file__, "--flood", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.0)  # let the flood connect
        flooded = clicks("flooded", args.clicks)
        assert flood.stdin is not None
        out, _ = flood.communicate("stop\n", timeout=60)
        done = json.loads(out.strip().splitlines()[-1])
        quiet2 = clicks("quiet", args.clicks)
    finally:
        _stop(server)
    floor = statistics.mean([quiet1["rate"], quiet2["rate"]])
    floor_p99 = statistics.mean([quiet1["p99"], quiet2["p99"]])
    lines.append(
        f"  {kind} clicks flooded: {flooded['rate'] / floor:.2f} × the quiet rate, p99 "
        f"{flooded['p99']:.1f} ms vs {floor_p99:.1f} ms quiet; the flood ({args.flood} "
        f"connections) had {done['kept']} junk messages kept, {done['refused']} recipients "
        f"refused, {done['garbage']} garbage commands answered, {done['trickled']} bytes "
        f"trickled, using {done['cpu']:.1f} s of CPU itself"
    )
    return lines


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--smtp-load":
        _load_main(json.loads(Path(sys.argv[2]).read_text()))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--flood":
        asyncio.run(_flood(json.loads(Path(sys.argv[2]).read_text())))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-inbound":
        _serve_inbound(sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-both":
        _serve_both(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--clicks", type=int, default=600)
    parser.add_argument("--flood", type=int, default=64, help="SMTP connections of the flood")
    args = parser.parse_args()
    print(
        f"bench_inbound: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
        f"{args.connections} SMTP connections; raw sink: bench/_sink.py (own process)",
        flush=True,
    )
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-inbound-") as tmp:
        work = Path(tmp)
        for kind in [k.strip() for k in args.db.split(",") if k.strip()]:
            print(f"{kind}:", flush=True)
            with bench_http.database(kind, work) as url:
                part = intake(kind, url, args, work)
            print("\n".join(part), flush=True)
            lines += part[-2:]
            (work / kind).mkdir()
            with bench_http.database(kind, work / kind) as url:
                part = flooded_clicks(kind, url, args, work)
            print("\n".join(part), flush=True)
            lines += part[-1:]
    print(f"summary (load average {os.getloadavg()[0]:.1f}):")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
