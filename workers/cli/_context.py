"""What every database- or broker-backed command shares: the process settings, one
transaction per unit of work, and outages turned into one error line instead of a traceback.

A user who mistypes a tenant, forgets `messplus db upgrade` or has Redis stopped should read
what to do, not a SQLAlchemy or kombu stack trace.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from workers.cli import CliError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from workers.settings import Settings

__all__ = ["broker_errors", "check_broker", "database_errors", "settings", "transaction"]


def settings() -> Settings:
    """The MESSPLUS_* settings of this process; a bad variable is a user error."""
    from workers import runtime
    from workers.settings import SettingsError

    try:
        return runtime.settings()
    except SettingsError as exc:
        raise CliError(str(exc)) from None


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
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from db.errors import DbError

    url = settings().database_url
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
