"""Checks of what a deployment is made from: compose.yaml, the Dockerfile, the README."""

from __future__ import annotations

from dataclasses import fields

from workers.settings import PREFIX, Settings

# Every variable load_settings accepts; any other MESSPLUS_ variable stops a worker.
SETTING_VARIABLES = frozenset(f"{PREFIX}{field.name.upper()}" for field in fields(Settings))
