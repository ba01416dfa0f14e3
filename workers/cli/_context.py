"""What every database- or broker-backed command shares: the process settings, the checks
made before a command runs, one transaction per unit of work, and outages turned into one
error line instead of a traceback.

A user who mistypes a tenant, forgets `messplus db upgrade` or has Redis stopped should read
what to do, not a SQLAlchemy or kombu stack trace.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from workers.cli import DATABASE, CliError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from workers.settings import Settings

__all__ = [
    "broker_errors",
    "check_broker",
    "check_schema",
    "database_errors",
    "open_database",
    "preflight",
    "settings",
    "transaction",
]


def settings() -> Settings:
    """The MESSPLUS_* settings of this process; a bad variable is a user error."""
    from workers import runtime
    from workers.settings import SettingsError

    try:
        return runtime.settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from None


def preflight(uses: frozenset[str], *, url: str | None = None, creates: bool = False) -> None:
    """What runs before a command that uses the deployment: every MESSPLUS_ setting is read
    and checked (the URLs' form included), and the database is opened once (see
    open_database), so a broken one is one error line before anything is done."""
    from db.engine import DATABASE_URL_ENV

    if not uses:
        return
    config = settings()
    if DATABASE in uses:
        default = url is None and not os.environ.get(DATABASE_URL_ENV, "").strip()
        open_database(url or config.database_url, default=default, creates=creates)


def open_database(url: str, *, default: bool, creates: bool = False) -> None:
    """Connect to the database once, without creating it unless `creates`.

    Connecting to a SQLite file that does not exist would create an empty one, so a
    read-only command run in the wrong directory would leave a `.messplus/messplus.db`
    behind and then fail on its missing tables; it is refused first instead. When
    MESSPLUS_DATABASE_URL is unset (`default`), the database used is named on stderr,
    so a user never reads or writes the default file by surprise.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool

    from db.engine import DATABASE_URL_ENV, make_engine, normalize_database_url, sqlite_file
    from db.errors import BadDatabaseUrl

    try:
        normalize_database_url(url)
    except BadDatabaseUrl as exc:
        raise CliError(f"bad database URL: {exc}") from None
    shown = make_url(url).render_as_string(hide_password=True)
    origin = f" (the default: {DATABASE_URL_ENV} is unset)" if default else ""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        if not creates:
            raise CliError(f"no database at {path}{origin}; `messplus db upgrade` creates it")
        path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url, poolclass=NullPool)
    try:
        with _database_errors(url), engine.connect():
            pass
    finally:
        engine.dispose()
    if default:
        print(f"messplus: database {shown}{origin}", file=sys.stderr)


def check_schema(url: str) -> None:
    """Refuse a database whose schema is not the one this messplus was built for: a worker
    started on it would fail every task it takes."""
    from sqlalchemy.engine import make_url

    from db import migrate

    with _database_errors(url):
        revision = migrate.current(url)
    head = migrate.head()
    if revision != head:
        shown = make_url(url).render_as_string(hide_password=True)
        state = "has no schema" if revision is None else f"is at revision {revision}"
        raise CliError(
            f"database {shown} {state}, this messplus needs {head}: run `messplus db upgrade`"
        )


@contextmanager
def transaction() -> Iterator[Session]:
    """One `with Session.begin()` against the configured database, under database_errors."""
    from workers import runtime

    with database_errors(), runtime.sessions().begin() as session:
        yield session


@contextmanager
def database_errors() -> Iterator[None]:
    """Database trouble as one line, for commands that open their own transactions.

    db/ errors (unknown tenant or job, a value the schema refuses) carry messages written
    for users and become CliError as they are; an unreachable database or a missing schema
    becomes one line naming the database (without its password).
    """
    with _database_errors(settings().database_url):
        yield


@contextmanager
def _database_errors(url: str) -> Iterator[None]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from db.errors import DbError

    try:
        yield
    except DbError as exc:
        raise CliError(str(exc)) from exc
    except (OperationalError, ProgrammingError) as exc:
        reason = " ".join(str(exc.orig).split())  # driver messages span several lines
        shown = make_url(url).render_as_string(hide_password=True)
        hint = ""
        if "no such table" in reason or ("relation" in reason and "does not exist" in reason):
            hint = " (run `messplus db upgrade` first)"
        raise CliError(f"cannot use database {shown}: {reason}{hint}") from exc


@contextmanager
def broker_errors(doing: str) -> Iterator[None]:
    """Turn a broker that cannot be reached into one line saying what was not done."""
    from kombu.exceptions import OperationalError

    try:
        yield
    except OperationalError as exc:
        raise CliError(f"broker {_broker_display()} unreachable ({exc}); {doing}") from exc


def check_broker() -> None:
    """Connect to the broker once, so a stopped Redis fails the command before it writes."""
    from workers.app import app

    with broker_errors("nothing was sent"), app.connection_for_write() as connection:
        # One quick retry: a CLI should say "unreachable" in a second, not back off for long.
        connection.ensure_connection(max_retries=1, interval_start=0.2)


def _broker_display() -> str:
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(settings().broker_url))
