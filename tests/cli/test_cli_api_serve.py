"""`messplus api serve` refuses what would make every uvicorn worker fail, in one line and
before it serves: a broker other than Redis (the rate limits live there) and an
unreachable one. The server itself is driven by tests/e2e/test_api.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.cli.conftest import Run, one_error_line


def test_a_broker_other_than_redis_is_refused(
    run: Callable[..., Run], cli_env: pytest.MonkeyPatch
) -> None:
    cli_env.setenv("MESSPLUS_BROKER_URL", "memory://")
    line = one_error_line(run("api", "serve", "--port", "0"))
    assert "MESSPLUS_BROKER_URL must be redis:// or rediss://, not memory://" in line


def test_an_unreachable_broker_is_refused(run: Callable[..., Run]) -> None:
    line = one_error_line(run("api", "serve", "--port", "0"))
    assert "broker redis://127.0.0.1:1/0 unreachable" in line
