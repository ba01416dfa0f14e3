"""Without MESSPLUS_DATABASE_URL, commands use `.messplus/messplus.db` under the working
directory: only `messplus db upgrade` creates it, and every command that used it says so."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Run, one_error_line

READ_ONLY = [
    ("tenants", "list"),
    ("zoo", "list"),
    ("sla",),
    ("predictors",),
    ("db", "current"),
    ("status", "0" * 32, "--tenant", "acme"),
]


@pytest.fixture
def empty_dir(tmp_path: Path) -> Path:
    (tmp_path / "cwd").mkdir()
    return tmp_path / "cwd"


@pytest.fixture
def nowhere(
    run: Callable[..., Run], cli_env: pytest.MonkeyPatch, empty_dir: Path
) -> Callable[..., Run]:
    """`run` in an empty directory with MESSPLUS_DATABASE_URL unset."""
    cli_env.delenv("MESSPLUS_DATABASE_URL")
    cli_env.chdir(empty_dir)
    return run


@pytest.mark.parametrize("command", READ_ONLY, ids=" ".join)
def test_a_read_only_command_never_creates_the_default_database(
    nowhere: Callable[..., Run], empty_dir: Path, command: tuple[str, ...]
) -> None:
    line = one_error_line(nowhere(*command))
    default = empty_dir.resolve() / ".messplus" / "messplus.db"
    assert line == (
        f"messplus: error: no database at {default} (the default: MESSPLUS_DATABASE_URL is "
        "unset); `messplus db upgrade` creates it"
    )
    assert list(empty_dir.iterdir()) == []


def test_db_upgrade_creates_it_and_every_command_names_it(
    nowhere: Callable[..., Run], empty_dir: Path
) -> None:
    note = (
        f"messplus: database sqlite:///{empty_dir.resolve() / '.messplus' / 'messplus.db'} "
        "(the default: MESSPLUS_DATABASE_URL is unset)\n"
    )
    upgraded = nowhere("db", "upgrade")
    assert upgraded.code == 0 and upgraded.err == note, upgraded
    assert (empty_dir / ".messplus" / "messplus.db").is_file()
    listed = nowhere("tenants", "list")
    assert listed.code == 0 and listed.err == note, listed


def test_a_configured_database_is_not_announced(run: Callable[..., Run]) -> None:
    result = run("tenants", "list")
    assert result.code == 0 and result.err == "", result
