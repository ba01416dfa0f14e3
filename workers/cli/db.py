"""`messplus db upgrade|downgrade|current`: create and migrate the workers' database.

The database is --url, else MESSPLUS_DATABASE_URL, else the embedded SQLite file under
./.messplus, the same default the workers use, so `messplus db upgrade` is all a first
run needs.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager

from workers.cli import DATABASE, CliError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = subparsers.add_parser("db", help="create or migrate the database schema")
    commands = db.add_subparsers(dest="db_command", required=True, metavar="COMMAND")
    upgrade = commands.add_parser("upgrade", help="migrate forward (default: to the newest)")
    upgrade.add_argument(
        "revision", nargs="?", default="head", help="target revision (default %(default)s)"
    )
    upgrade.set_defaults(func=_upgrade, uses=frozenset({DATABASE}), creates_database=True)
    # No default target: going back drops data, so the user names how far.
    downgrade = commands.add_parser("downgrade", help="migrate back; 'base' drops every table")
    downgrade.add_argument("revision", help="target revision, e.g. -1 or base")
    downgrade.set_defaults(func=_downgrade, uses=frozenset({DATABASE}))
    current = commands.add_parser("current", help="show the database's revision and the newest")
    current.set_defaults(func=_current, uses=frozenset({DATABASE}))
    for parser in (upgrade, downgrade, current):
        parser.add_argument(
            "--url", help="database URL (default: $MESSPLUS_DATABASE_URL or .messplus/messplus.db)"
        )


def _upgrade(args: argparse.Namespace) -> int:
    from db import migrate

    url = _url(args)
    with _user_errors(url):
        migrate.upgrade(url, args.revision)
        return _report(url)


def _downgrade(args: argparse.Namespace) -> int:
    from db import migrate

    url = _url(args)
    with _user_errors(url):
        migrate.downgrade(url, args.revision)
        return _report(url)


def _current(args: argparse.Namespace) -> int:
    url = _url(args)
    with _user_errors(url):
        return _report(url)


def _report(url: str) -> int:
    from db import migrate

    revision = migrate.current(url)
    head = migrate.head()
    state = "up to date" if revision == head else f"newest is {head}"
    print(f"{_display(url)}: revision {revision or 'none (empty schema)'}, {state}")
    return 0


def _url(args: argparse.Namespace) -> str:
    from db.engine import database_url_from_env

    return args.url or database_url_from_env()


def _display(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@contextmanager
def _user_errors(url: str) -> Iterator[None]:
    """Turn a bad revision, a bad URL or an unreachable database into one CLI error line."""
    from alembic.util import CommandError
    from sqlalchemy.exc import OperationalError

    from db.errors import BadDatabaseUrl

    try:
        yield
    except CommandError as exc:
        raise CliError(str(exc)) from exc
    except BadDatabaseUrl as exc:
        raise CliError(f"bad database URL: {exc}") from exc
    except OperationalError as exc:
        reason = " ".join(str(exc.orig).split())  # driver messages span several lines
        raise CliError(f"cannot use database {_display(url)}: {reason}") from exc
