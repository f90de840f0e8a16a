"""The HTTP server's stack: ``mailflow serve`` and the HTTP bench run uvicorn on httptools and
uvloop when they are installed (``uvicorn[standard]``), and the bench's banner says which.

mailflow depends on ``uvicorn[standard]``: an installation without httptools or uvloop is a
broken one, and these tests fail on it rather than being skipped."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from mailflow import runner

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_http.py"


@pytest.fixture(scope="module")
def bench_http() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_http", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_http", module)
    spec.loader.exec_module(module)
    return module


async def _loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_the_standard_extras_are_installed() -> None:
    for name in ("httptools", "uvloop"):
        assert importlib.util.find_spec(name) is not None, f"{name} (uvicorn[standard]) missing"


def test_serve_runs_on_uvloop_when_it_is_installed() -> None:
    assert runner.run(_loop_module()) == "uvloop"


def test_the_bench_banner_names_httptools_and_uvloop_when_installed(
    bench_http: ModuleType,
) -> None:
    assert bench_http.server_stack() == "httptools, uvloop"
    line = bench_http.banner("raw", 16)
    assert line.endswith("16 connections; one uvicorn process (httptools, uvloop)")
    assert "h11" not in line


def test_the_bench_stack_is_read_from_the_server_configuration(bench_http: ModuleType) -> None:
    """Not a fixed string: a configuration asking for h11 is named h11."""
    config = bench_http.server_config(None, 0, http="h11", log_config=None)
    http, _, loop = bench_http.server_stack(config).partition(", ")
    assert http == "h11"
    assert loop == "uvloop"
