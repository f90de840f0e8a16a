"""The app for ``mailflow serve --workers N``: each HTTP process builds its own system from
the configuration file named in ``MAILFLOW_CONFIG_FILE`` (or the development defaults)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from mailflow import logs
from mailflow.bootstrap import build
from mailflow.config import load
from mailflow.web.app import create_app

CONFIG_ENV = "MAILFLOW_CONFIG_FILE"


def create_app_from_env() -> FastAPI:
    loaded = load(os.environ.get(CONFIG_ENV) or None)
    logs.configure(loaded.settings.server.log_format, loaded.settings.server.log_level)
    return create_app(build(loaded.settings))
