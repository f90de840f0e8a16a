"""``/healthz`` (no database work), ``/readyz`` (database, schema, the supervised tasks) and
the figures ``/metrics`` adds for them: task state, emails by outcome, SMTP send time, the
outbox by every status and the age of its oldest queued email."""

from __future__ import annotations

import signal
import smtplib
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from mailflow.bootstrap import System
from mailflow.store import migrate
from mailflow.store.database import Database
from mailflow.web.app import create_app
from tests import factories
from tests.chaos import background_tasks, database_refused, failing_statements
from tests.integration.test_crash import _log_of, _write_config, mailflow
from tests.support import MovableClock, RelayHandler, deliver, free_port, wait_for


def _samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _database_gone(system: System, url: str) -> object:
    if system.db.is_sqlite:
        return failing_statements(system.db.engine, system.db.read_engine)
    return database_refused(make_url(url).database or "")


@pytest.mark.postgres
def test_readyz_follows_the_database_and_the_tasks_while_healthz_stays_up(
    db_url: str, make_system: Callable[..., System]
) -> None:
    system = make_system(db_url, policy={"sweep_every_seconds": 0.2})
    with TestClient(create_app(system), base_url="http://mailflow.test") as web:
        # No task runs yet (an HTTP-only process): the database and schema decide.
        ready = web.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["status"] == "ready"
        assert ready.json()["tasks"] == []

        with background_tasks(system):
            wait_for(
                lambda: any(t["name"] == "sweeper" for t in web.get("/readyz").json()["tasks"])
            )
            wait_for(lambda: web.get("/readyz").status_code == 200)
            body = web.get("/readyz").json()
            names = {t["name"] for t in body["tasks"]}
            expected = {"delivery.claim", "delivery.flusher", "delivery.sender.1", "sweeper"}
            if not system.db.is_sqlite:
                expected.add("wakeup")
            assert expected <= names
            checks = {c["name"]: c for c in body["checks"]}
            assert checks["database"]["ok"] and checks["schema"]["detail"] == "current"
            assert checks["task:sweeper"]["ok"]

            with _database_gone(system, db_url):  # type: ignore[attr-defined]
                gone = web.get("/readyz")
                assert gone.status_code == 503, gone.text
                assert gone.headers["retry-after"] == "5"
                problems = gone.json()["problems"]
                assert problems[0].startswith("database: unreachable: ")
                assert "schema: unknown while the database is unreachable" in problems
                # The sweeper fails and waits for its restart: the task says so too.
                wait_for(lambda: "task:sweeper" in str(web.get("/readyz").json()["problems"]))
                assert web.get("/healthz").json() == {"status": "ok"}  # the process is up

            wait_for(lambda: web.get("/readyz").status_code == 200, timeout=15)
            sweeper = next(t for t in web.get("/readyz").json()["tasks"] if t["name"] == "sweeper")
            assert sweeper["up"] and sweeper["restarts"] >= 1
            assert sweeper["last_error"]
            samples = _samples(web)
            assert samples[("mailflow_task_restarts_total", (("task", "sweeper"),))] >= 1
            assert samples[("mailflow_task_up", (("task", "delivery.claim"),))] == 1
            assert samples[("mailflow_task_last_success_seconds", (("task", "sweeper"),))] > 0


def test_readyz_says_when_the_schema_is_behind(
    tmp_path: Path, make_system: Callable[..., System]
) -> None:
    path = tmp_path / "old.db"
    db = Database.from_url(f"sqlite:///{path}")
    migrate.upgrade(db.engine, "0009")  # one migration behind this code
    db.dispose()
    system = make_system(f"sqlite:///{path}")
    with TestClient(create_app(system)) as web:
        answer = web.get("/readyz")
    assert answer.status_code == 503
    [problem] = answer.json()["problems"]
    assert problem.startswith("schema: at revision ")
    assert problem.endswith("(run `mailflow db upgrade`)")


def test_openapi_types_readyz(web: TestClient) -> None:
    route = web.get("/openapi.json").json()["paths"]["/readyz"]["get"]["responses"]
    assert route["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReadyOut")
    assert route["503"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReadyOut")


def test_metrics_count_emails_by_outcome_and_every_outbox_status(
    system: System, api: TestClient, relay: tuple[RelayHandler, int], clock: MovableClock
) -> None:
    handler, _ = relay
    samples = _samples(api)
    for status in ("queued", "sent", "dead"):
        assert samples[("mailflow_outbox_messages", (("status", status),))] == 0
    assert samples[("mailflow_outbox_oldest_queued_seconds", ())] == 0

    seller = factories.seller(api)
    for _ in range(3):
        factories.order(api, seller["id"])  # one email to the seller each
    clock.advance(seconds=90)
    samples = _samples(api)
    queued = samples[("mailflow_outbox_messages", (("status", "queued"),))]
    assert queued == 3
    assert samples[("mailflow_outbox_oldest_queued_seconds", ())] == 90

    handler.script = ["451 busy", "550 no such user"]
    deliver(system)
    samples = _samples(api)
    assert samples[("mailflow_outbox_oldest_queued_seconds", ())] > 0  # the retried one waits
    by_outcome: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name == "mailflow_emails_total":
            outcome = dict(labels)["outcome"]
            by_outcome[outcome] = by_outcome.get(outcome, 0) + value
            assert dict(labels)["template"]  # the email's key
    assert by_outcome == {"retried": 1, "dead": 1, "sent": 1}
    assert samples[("mailflow_smtp_send_seconds_count", ())] == queued
    assert samples[("mailflow_outbox_messages", (("status", "dead"),))] == 1
    assert samples[("mailflow_outbox_messages", (("status", "queued"),))] == 1


def test_serve_and_inbox_serve_run_their_tasks_supervised_and_stop_on_sigterm(
    sqlite_url: str, tmp_path: Path
) -> None:
    """The real processes: ``serve`` lists its tasks, the inbox among them, as ready;
    ``inbox serve`` keeps its inbox; both stop cleanly on SIGTERM."""
    http_port, inbox_port = free_port(), free_port()
    config = _write_config(
        tmp_path,
        sqlite_url,
        server=f'host = "127.0.0.1"\nport = {http_port}',
        smtp=f'mode = "embedded"\nembedded_port = {inbox_port}',
    )

    def ready() -> bool:
        try:
            return httpx2.get(f"http://127.0.0.1:{http_port}/readyz", timeout=2).status_code == 200
        except httpx2.HTTPError:
            return False

    with mailflow("serve", "--config", str(config), cwd=tmp_path) as proc:
        wait_for(lambda: proc.poll() is not None or ready(), timeout=30)
        assert proc.poll() is None, _log_of(tmp_path, "serve")
        body = httpx2.get(f"http://127.0.0.1:{http_port}/readyz", timeout=5).json()
        names = {t["name"] for t in body["tasks"]}
        assert {"inbox", "sweeper", "delivery.claim", "delivery.flusher"} <= names
        assert all(t["up"] and t["restarts"] == 0 for t in body["tasks"])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, _log_of(tmp_path, "serve")

    with mailflow("inbox", "serve", "--config", str(config), cwd=tmp_path) as proc:

        def accepts() -> bool:
            try:
                with smtplib.SMTP("127.0.0.1", inbox_port, timeout=2) as smtp:
                    smtp.sendmail("a@shop.example", ["b@shop.example"], b"Subject: hi\r\n\r\nhi")
                return True
            except OSError:
                return proc.poll() is not None

        wait_for(accepts, timeout=30)
        assert proc.poll() is None, _log_of(tmp_path, "inbox")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, _log_of(tmp_path, "inbox")
    assert "Traceback" not in _log_of(tmp_path, "serve") + _log_of(tmp_path, "inbox")
