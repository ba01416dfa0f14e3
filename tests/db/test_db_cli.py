"""`messplus db upgrade|downgrade|current` on both backends."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

import workers.cli
from db.migrate import current, head
from workers.cli import CliError
from workers.cli import db as db_cli


def _run(*argv: str) -> int:
    # Only this command group: the dispatcher also loads command modules other people own.
    parser = argparse.ArgumentParser(prog="messplus")
    db_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(list(argv))
    return int(args.func(args))


def test_the_command_group_is_registered() -> None:
    assert "workers.cli.db" in workers.cli.COMMAND_MODULES


def test_upgrade_current_downgrade(
    make_database: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_database(migrated=False)
    assert _run("db", "current", "--url", url) == 0
    assert "revision none (empty schema)" in capsys.readouterr().out

    assert _run("db", "upgrade", "--url", url) == 0
    assert f"revision {head()}, up to date" in capsys.readouterr().out
    assert current(url) == head()

    assert _run("db", "downgrade", "base", "--url", url) == 0
    assert current(url) is None


def test_user_errors_become_cli_errors(make_database: Callable[..., str]) -> None:
    url = make_database(migrated=False)
    with pytest.raises(CliError, match="nope"):
        _run("db", "upgrade", "nope", "--url", url)
    with pytest.raises(CliError, match="bad database URL"):
        _run("db", "current", "--url", "nosuchdb://x")


def test_unreachable_database_hides_the_password() -> None:
    with pytest.raises(CliError, match="cannot use database") as caught:
        _run("db", "current", "--url", "postgresql://u:secret@127.0.0.1:1/x")
    assert "secret" not in str(caught.value)


def test_downgrade_needs_an_explicit_target() -> None:
    with pytest.raises(SystemExit):
        _run("db", "downgrade")
