"""Waiting for a chat request's answer without polling the database hard.

Model workers notify JOB_FINAL_CHANNEL with the job ids whose requests they finished
(db.inference, Postgres only, on commit). One listening connection per API process wakes
the callers waiting on those jobs; each caller then reads its request's state once. A
missed notification (the listener reconnecting) costs at most one poll interval, since
callers also look every POLL_WITH_LISTENER_S; without Postgres (SQLite) they poll every
POLL_WITHOUT_LISTENER_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable

from sqlalchemy.engine import make_url

from db.inference import JOB_FINAL_CHANNEL

__all__ = ["JobWaiter"]

log = logging.getLogger(__name__)

POLL_WITH_LISTENER_S = 1.0
POLL_WITHOUT_LISTENER_S = 0.05
RECONNECT_S = 1.0


class JobWaiter:
    """Wake-ups per job id, fed by Postgres notifications."""

    def __init__(self, database_url: str) -> None:
        url = make_url(database_url)
        self._conninfo = (
            url.set(drivername="postgresql").render_as_string(hide_password=False)
            if url.get_backend_name() == "postgresql"
            else None
        )
        self._events: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._listening = False

    async def start(self) -> None:
        if self._conninfo is not None:
            self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        import psycopg

        assert self._conninfo is not None
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True
                ) as connection:
                    await connection.execute(f"LISTEN {JOB_FINAL_CHANNEL}")
                    self._listening = True
                    self._wake_all()  # anything finished while we were not listening
                    async for notice in connection.notifies():
                        for event in self._events.get(notice.payload, ()):
                            event.set()
            except psycopg.Error as exc:
                log.warning("job notifications lost (%s); reconnecting", type(exc).__name__)
            finally:
                self._listening = False
            await asyncio.sleep(RECONNECT_S)

    def _wake_all(self) -> None:
        for events in self._events.values():
            for event in events:
                event.set()

    async def wait(
        self, job_id: str, finished: Callable[[], Awaitable[bool]], timeout_s: float
    ) -> bool:
        """True once `finished()` says so, False if `timeout_s` passes first."""
        event = asyncio.Event()
        self._events[job_id].add(event)  # before the first look: no wake-up can be missed
        deadline = time.monotonic() + timeout_s
        try:
            while not await finished():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                poll = POLL_WITH_LISTENER_S if self._listening else POLL_WITHOUT_LISTENER_S
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), min(remaining, poll))
                event.clear()
            return True
        finally:
            self._events[job_id].discard(event)
            if not self._events[job_id]:
                del self._events[job_id]
