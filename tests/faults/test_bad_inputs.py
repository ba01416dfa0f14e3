"""Issue 5's table of bad inputs: each tried on a real deployment (Postgres, Redis, a CPU
Triton zoo and one Celery worker process per queue), through the command line in a process
of its own or published straight onto a queue, with what it got.

CASES is the table, as data: what kind of bad input, where it goes in, the input itself and
the outcome expected. A command must exit with status 2 and one error line and store
nothing; a message must end as a dead letter with the reason (or, where it names nothing to
do, change nothing), and the worker must go on consuming: after every bad message a good one
is published on the same queue and must be processed. No output may show the database
password. `python -m tests.faults.bad_inputs_table` prints the same table with what each
case got; the test asserts it is what was expected.

The unit tests of the commands' input checks (tests/cli) and of dead letters (tests/db)
stay where they are; here every kind runs end to end, against the real processes.
"""

from __future__ import annotations

import json
import pickle
import re
import shlex
import string
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.faults.envelopes import MALFORMED
from tests.processes import run_with_stdout
from workers.cli import BROKEN_PIPE_EXIT
from workers.fleet import Fleet

pytestmark = pytest.mark.services

# Postgres here trusts local connections and ignores the password; no output may show it.
DB_PASSWORD = "Bad1nput-pw-Zq7"
HUGE_CHARS = 4 * 1024 * 1024
WAIT_S = 180.0


@dataclass(frozen=True)
class Refused:
    """Exit status 2 with one error line saying `says`; nothing stored, nothing sent."""

    says: str


@dataclass(frozen=True)
class DeadLetter:
    """Kept as a dead letter whose reason says `says`; nothing else changes."""

    says: str


@dataclass(frozen=True)
class Failed:
    """Accepted, and the request ends failed with a reason saying `says`: one line, as a
    tenant reads it, without the server's traceback or paths (those go to the log)."""

    says: str


@dataclass(frozen=True)
class NoOp:
    """Consumed with nothing to do: the ids name no request waiting for this stage."""


@dataclass(frozen=True)
class Quiet:
    """Ended quietly as a tool killed by SIGPIPE does: status 141, nothing on stderr."""


Outcome = Refused | DeadLetter | Failed | NoOp | Quiet


@dataclass(frozen=True)
class Command:
    """`messplus ARGS` in a process of its own; $file names a file holding `file`. Its
    stdout is read (pipe), a pipe whose reader is gone (gone), or closed (closed)."""

    args: str
    file: str | bytes | None = None
    env: tuple[tuple[str, str], ...] = ()
    stdout: str = "pipe"


@dataclass(frozen=True)
class Message:
    """Published onto `queue` ("model": the queue of the model that served $done).

    By default `body` is the one argument of the queue's task, sent as Celery sends it; with
    `raw` it is the message body itself, under the headers Celery sends for `task` (none for
    None) changed by `headers` (JSON; null removes a header).
    """

    queue: str
    body: str
    raw: bool = False
    task: str | None = None
    content_type: str = "application/json"
    headers: str = "{}"


@dataclass(frozen=True)
class Case:
    kind: str
    input: Command | Message
    expected: Outcome

    @property
    def channel(self) -> str:
        if isinstance(self.input, Message):
            return f"queue {self.input.queue}" + (" (raw)" if self.input.raw else "")
        command = " ".join(shlex.split(self.input.args)[:1])
        return f"env + {command}" if self.input.env else command


_SUBMIT = "submit $file --tenant acme"
# In the zoo (disabled, so nothing is routed to it) but not served by the deployment's Triton.
_GHOST = "ghost-3b"
_FEEDBACK = "feedback $file --tenant acme"
_RATED_AT = '{"request_id": $done, "satisfied": true, "rated_at": "%s"}\n'
_ROUTE_BODY = '[[{"request_ids": [$queued]}], {}, {}]'
_OTHER_ZOO_CSV = (
    "doc_id,input_text,benchmark_name,label_b-small,energy_consumption_b-small,"
    "inference_time_b-small\n0,hello,x,1,1.0,0.1\n"
)

# Issue 12.1: every malformed envelope on every queue, then a few more kinds that also
# stopped a worker (or slipped through) when tried by hand.
_TASKS = {
    "route": "messplus.route",
    "model": "messplus.infer",
    "feedback": "messplus.feedback",
    "train": "messplus.train",
}
_ARGUMENTS = {
    "route": '{"request_ids": [999999999]}',
    "model": '{"model": "$model", "request_ids": [999999999]}',
    "feedback": '{"rating_ids": [999999999]}',
    "train": '{"dry_run": true}',
}
_GOOD_ROUTE = '[[{"request_ids": [999999999]}], {}, {}]'
_ENVELOPE_CASES: tuple[Case, ...] = tuple(
    Case(
        f"malformed envelope: {envelope.kind}",
        Message(
            queue,
            envelope.body.replace("$arg", _ARGUMENTS[queue]),
            raw=True,
            task=_TASKS[queue],
            headers=envelope.headers.replace("$task", _TASKS[queue]),
        ),
        DeadLetter(envelope.says),
    )
    for queue in _TASKS
    for envelope in MALFORMED
)
_MORE_ENVELOPE_CASES: tuple[Case, ...] = (
    Case("malformed envelope: a shadow header that is a list",
         Message("route", _GOOD_ROUTE, raw=True, task="messplus.route", headers='{"shadow": [1]}'),
         DeadLetter("the 'shadow' header must be a string or null")),
    Case("malformed envelope: an id header that is a list",
         Message("route", _GOOD_ROUTE, raw=True, task="messplus.route", headers='{"id": [1]}'),
         DeadLetter("the 'id' header must be a string")),
    Case("malformed envelope: a timelimit of three values",
         Message("route", _GOOD_ROUTE, raw=True, task="messplus.route",
                 headers='{"timelimit": [1, 2, 3]}'),
         DeadLetter("the 'timelimit' header must be [hard, soft]")),
    Case("malformed envelope: kwargs that are an array",
         Message("route", '[[{"request_ids": [999999999]}], [1], {}]', raw=True,
                 task="messplus.route"),
         DeadLetter("kwargs must be an object")),
    Case("malformed envelope: an embed chaining another task",
         Message("route", '[[{"request_ids": [999999999]}], {}, {"chain": [{"task": "x"}]}]',
                 raw=True, task="messplus.route"),
         DeadLetter("embed links chain: messplus tasks are never linked")),
    Case("malformed envelope: a header Celery would re-send on retry",
         Message("model", '[[{"model": "$model", "request_ids": [999999999]}], {}, {}]', raw=True,
                 task="messplus.infer", headers='{"headers": {"task": "messplus.train"}}'),
         DeadLetter("unknown header(s) 'headers'")),
    Case("malformed envelope: stamps that a retry would turn into options",
         Message("model", '[[{"model": "$model", "request_ids": [999999999]}], {}, {}]', raw=True,
                 task="messplus.infer",
                 headers='{"stamped_headers": ["queue"], "stamps": {"queue": "train"}}'),
         DeadLetter("messplus does not stamp tasks")),
)  # fmt: skip

# Placeholders: $file, $done (a done request of tenant acme, never rated, not explored),
# $queued (a request of acme never routed), $failed (one of acme's that failed), $acme_job,
# $model (the model that served $done), $unasked (a model that did not answer $done),
# $ids_10001 (10,001 ids), $huge (4 MiB of "x"), $password (the database password).
CASES: tuple[Case, ...] = (
    Case("NaN (JSON's non-standard number) as a prompt", Command(_SUBMIT, "NaN\n"),
         Refused("got a number")),
    Case("a prompt over MESSPLUS_MAX_PROMPT_BYTES", Command(_SUBMIT, f'"{"y" * 20000}"\n'),
         Refused("is 20000 bytes, at most 16384")),
    Case("gzip bytes instead of JSON lines", Command(_SUBMIT, b"\x1f\x8b\x08\x00\x00\x00\x00"),
         Refused("not valid UTF-8")),
    Case("a directory instead of a file", Command("submit . --tenant acme"),
         Refused("cannot read")),
    Case("a tenant name written as SQL injection",
         Command("submit $file --tenant \"acme' OR '1'='1\"", '"hello"\n'),
         Refused("unknown tenant")),
    Case("a prompt the model server refuses (over its 8 KiB context)",
         Command(_SUBMIT, f'"{"z" * 9000}"\n'),
         Failed("rejected: prompt of 9000 bytes exceeds the context")),
    Case("a rating of another tenant's request",
         Command("feedback $file --tenant zeta", '{"request_id": $done, "satisfied": true}\n'),
         Refused("unknown request id")),
    Case("a negative rating", Command(_FEEDBACK, '{"request_id": $done, "satisfied": -1}\n'),
         Refused("satisfied must be true or false")),
    Case("NaN as a rating", Command(_FEEDBACK, '{"request_id": $done, "satisfied": NaN}\n'),
         Refused("satisfied must be true or false")),
    Case("a fractional request id", Command(_FEEDBACK, '{"request_id": 1.5, "satisfied": true}\n'),
         Refused("request_id must be a positive integer")),
    Case("a rating of an answer that never existed (a model that did not answer it)",
         Command(_FEEDBACK, '{"request_id": $done, "satisfied": true, "model": "$unasked"}\n'),
         Refused("did not answer request")),
    Case("a rating of a request not answered yet",
         Command(_FEEDBACK, '{"request_id": $queued, "satisfied": true}\n'),
         Refused("is not answered yet (queued): rate it once it is done")),
    Case("a rating of a request that failed",
         Command(_FEEDBACK, '{"request_id": $failed, "satisfied": false}\n'),
         Refused("failed: it has no answer to rate")),
    Case("a request id beyond 64 bits",
         Command(_FEEDBACK, '{"request_id": 9223372036854775808, "satisfied": true}\n'),
         Refused("request_id must be a positive integer below 2**63")),
    Case("a rating dated a year ahead",
         Command(_FEEDBACK, _RATED_AT % "2999-01-01T00:00Z"),
         Refused("rated_at is more than 300 s in the future")),
    Case("a rating time without its UTC offset",
         Command(_FEEDBACK, _RATED_AT % "2026-12-01T09:30"),
         Refused("rated_at has no UTC offset")),
    Case("a malformed line and an unknown request id in one file",
         Command(_FEEDBACK, '{"request_id": $done, "satisfied": tru}\n'
                            '{"request_id": 999999999, "satisfied": true}\n'),
         Refused("2 bad lines, listed above (nothing sent)")),
    Case("alpha NaN", Command("tenants add nan-sla --alpha nan"), Refused("must be finite")),
    Case("alpha outside (0, 1)", Command("tenants add over --alpha 1.5"),
         Refused("alpha must be in (0, 1)")),
    Case("a tenant name with a leading space", Command("tenants add ' acme' --alpha 0.5"),
         Refused("without surrounding spaces")),
    Case("a tenant name with a terminal escape sequence",
         Command("tenants add 'acme\x1b[2J' --alpha 0.5"),
         Refused("a tenant name is 1 to 200 ASCII letters")),
    Case("a tenant name with a right-to-left override",
         Command("tenants add 'acme\u202egnp.exe' --alpha 0.5"),
         Refused("a tenant name is 1 to 200 ASCII letters")),
    Case("a control character inside a JSON string", Command(_SUBMIT, '"a\x01b"\n'),
         Refused("malformed JSON: Invalid control character at column 3 (nothing")),
    Case("a tenant that exists already", Command("tenants add acme --alpha 0.5"),
         Refused("already exists")),
    Case("another tenant's job id", Command("status $acme_job --tenant zeta"),
         Refused("unknown job")),
    Case("a job id written as SQL injection", Command("results \"' OR 1=1 --\" --tenant acme"),
         Refused("unknown job")),
    Case("a CSV that is not a labelled zoo",
         Command("train $file", "root:x:0:0:root:/root:/bin/bash\n"),
         Refused("no label columns")),
    Case("replay with alpha NaN", Command("replay missing.csv --alpha nan"),
         Refused("alpha must be in (0, 1)")),
    Case("replay with a negative rating batch",
         Command("replay missing.csv --alpha 0.5 --rating-batch -3"),
         Refused("--rating-batch must be >= 0, got -3")),
    Case("reconcile --older-than NaN", Command("reconcile --older-than nan"),
         Refused("must be finite")),
    Case("an unknown predictor version", Command("predictors activate 999"),
         Refused("unknown predictor version 999")),
    Case("a worker for a model not in the zoo", Command("worker model gpt-9"),
         Refused("unknown model 'gpt-9'")),
    Case("a worker for a zoo model Triton does not serve", Command(f"worker model {_GHOST}"),
         Refused(f"{_GHOST} is not served by Triton at")),
    Case("a misspelt setting", Command("tenants list", env=(("CHUNK_SIZ", "3"),)),
         Refused("unknown setting MESSPLUS_CHUNK_SIZ")),
    Case("an infinite timeout setting", Command("reconcile", env=(("STUCK_AFTER_S", "inf"),)),
         Refused("MESSPLUS_STUCK_AFTER_S='inf' is not a valid float")),
    Case("a database that refuses connections, URL with a password",
         Command("tenants list",
                 env=(("DATABASE_URL", "postgresql://postgres:$password@127.0.0.1:1/none"),)),
         Refused("postgresql://postgres:***@127.0.0.1:1/none")),
    Case("a database URL of a database messplus does not run on",
         Command("tenants list", env=(("DATABASE_URL", "mysql://root@127.0.0.1/x"),)),
         Refused("unsupported database mysql://root@127.0.0.1/x")),
    Case("the same, migrating",
         Command("db upgrade", env=(("DATABASE_URL", "mysql://root@127.0.0.1/x"),)),
         Refused("unsupported database mysql://root@127.0.0.1/x")),
    Case("a database URL that is not a URL",
         Command("tenants list", env=(("DATABASE_URL", "notaurl"),)),
         Refused("not a database URL")),
    Case("no database URL, and no database where the default would be",
         Command("tenants list", env=(("DATABASE_URL", ""),)), Refused("no database at")),
    Case("a broker URL of an unknown transport",
         Command(_SUBMIT, '"hello"\n', env=(("BROKER_URL", "foo://bar"),)),
         Refused("unknown broker transport 'foo'")),
    Case("a broker URL that is not a URL",
         Command(_SUBMIT, '"hello"\n', env=(("BROKER_URL", "notaurl"),)),
         Refused("not a broker URL")),
    Case("a broker that refuses connections",
         Command(_SUBMIT, '"hello"\n', env=(("BROKER_URL", "redis://127.0.0.1:1/0"),)),
         Refused("broker redis://127.0.0.1:1/0 unreachable")),
    Case("stdout's reader gone (`| head -0`)", Command("zoo register", stdout="gone"), Quiet()),
    Case("stdout closed (`>&-`)", Command("zoo list", stdout="closed"),
         Refused("standard output is closed")),
    Case("a zoo the Triton it points at does not serve",
         Command("zoo register --data $file", _OTHER_ZOO_CSV),
         Refused("b-small is not served by Triton")),
    Case("removing a model requests were routed to", Command("zoo remove $model"),
         Refused("has been routed")),
    Case("disabling a model not in the zoo", Command("zoo disable gpt-9"),
         Refused("unknown model 'gpt-9'")),
    Case("--timeout without --wait", Command(f"{_SUBMIT} --timeout 5", '"hello"\n'),
         Refused("--timeout needs --wait")),
    Case("a body that is not JSON",
         Message("route", "{not json", raw=True, task="messplus.route"),
         DeadLetter("cannot decode the body")),
    Case("a pickled body (JSON only)",
         Message("route", _ROUTE_BODY, raw=True, task="messplus.route",
                 content_type="application/x-python-serialize"),
         DeadLetter("Refusing to deserialize untrusted content of type pickle")),
    Case("an unknown task name", Message("route", _ROUTE_BODY, raw=True, task="messplus.nope"),
         DeadLetter("no such task")),
    Case("a body without a task header", Message("route", "{}", raw=True),
         DeadLetter("not a task message")),
    Case("no arguments", Message("route", "[[], {}, {}]", raw=True, task="messplus.route"),
         DeadLetter("missing 1 required positional argument")),
    Case("an unexpected keyword argument",
         Message("route", "[[{\"request_ids\": [$queued]}], {\"priority\": 9}, {}]", raw=True,
                 task="messplus.route"),
         DeadLetter("unexpected keyword argument 'priority'")),
    Case("an array instead of an object", Message("route", "[$queued]"),
         DeadLetter("payload must be a JSON object, got list")),
    Case("a prompt where only ids belong",
         Message("route", '{"request_ids": [$queued], "prompt": "hello"}'),
         DeadLetter("unknown keys ['prompt']")),
    Case("ids as strings", Message("route", '{"request_ids": ["$queued"]}'),
         DeadLetter("request_ids must be positive integers")),
    Case("a negative id", Message("route", '{"request_ids": [-5]}'),
         DeadLetter("request_ids must be positive integers")),
    Case("no ids", Message("route", '{"request_ids": []}'),
         DeadLetter("request_ids must be a non-empty list")),
    Case("10,001 ids in one message", Message("route", '{"request_ids": [$ids_10001]}'),
         DeadLetter("request_ids has 10001 ids, at most 10000")),
    Case("4 MiB of text where ids belong", Message("route", '{"request_ids": "$huge"}'),
         DeadLetter("request_ids must be a non-empty list")),
    Case("ids of no request", Message("route", '{"request_ids": [999999999]}'), NoOp()),
    Case("a replayed message for a request already done",
         Message("route", '{"request_ids": [$done]}'), NoOp()),
    Case("a model not in the zoo", Message("model", '{"model": "gpt-9", "request_ids": [$done]}'),
         DeadLetter("unknown model 'gpt-9'")),
    Case("a NUL character in the model name",
         Message("model", '{"model": "$model\\u0000", "request_ids": [$done]}'),
         DeadLetter("model contains a NUL character")),
    Case("booleans as ids", Message("model", '{"model": "$model", "request_ids": [true]}'),
         DeadLetter("request_ids must be positive integers")),
    Case("a replayed answer request for a request answered already",
         Message("model", '{"model": "$model", "request_ids": [$done]}'), NoOp()),
    Case("ratings where only ids of stored ratings belong (a forged or old message)",
         Message("feedback", '{"ratings": [{"request_id": $done, "satisfied": true}]}'),
         DeadLetter("unknown keys ['ratings']")),
    Case("ids of no stored rating", Message("feedback", '{"rating_ids": [999999999]}'), NoOp()),
    Case("rating ids as strings", Message("feedback", '{"rating_ids": ["1"]}'),
         DeadLetter("rating_ids must be positive integers below 2**63")),
    Case("a rating id beyond 64 bits",
         Message("feedback", '{"rating_ids": [9223372036854775808]}'),
         DeadLetter("rating_ids must be positive integers below 2**63")),
    Case("no rating ids", Message("feedback", '{"rating_ids": []}'),
         DeadLetter("rating_ids must be a non-empty list")),
    Case("a request id beyond 64 bits on the route queue",
         Message("route", '{"request_ids": [9223372036854775808]}'),
         DeadLetter("request_ids must be positive integers below 2**63")),
    Case("dry_run as a string", Message("train", '{"dry_run": "yes"}'),
         DeadLetter("dry_run must be true or false")),
    Case("an unknown key", Message("train", '{"dry_run": true, "zoo": "other"}'),
         DeadLetter("unknown keys ['zoo']")),
    Case("null instead of an object", Message("train", "null"),
         DeadLetter("payload must be a JSON object, got NoneType")),
    *_ENVELOPE_CASES,
    *_MORE_ENVELOPE_CASES,
)  # fmt: skip


@dataclass
class Deployment:
    """A running deployment and the requests the cases and their proofs use up."""

    fleet: Fleet
    sessions: sessionmaker[Session]
    work_dir: Path
    acme_id: int
    model: str
    placeholders: dict[str, str]
    spare: list[int]  # queued requests of acme, never published: one per route/model proof
    unrated: list[int]  # done requests of acme, never rated: one per feedback proof
    reserved: frozenset[int]  # both pools: what happens to them is the proofs' doing


@dataclass(frozen=True)
class Observed:
    """What a case got: the command's exit status and error line, or what the queue's
    worker did with the message, and the proof that the worker went on consuming."""

    got: str
    proof: str
    exit_code: int | None
    error_line: str
    dead_letters: tuple[tuple[str, str], ...]
    failures: tuple[str, ...]
    changed: tuple[str, ...]
    shows_password: bool


def matches(expected: Outcome, observed: Observed) -> bool:
    """Whether what a case got is the outcome expected (and no output shows the password)."""
    if observed.shows_password:
        return False
    quiet = not observed.dead_letters and not observed.failures
    if isinstance(expected, Refused):
        return (
            observed.exit_code == 2
            and expected.says in observed.error_line
            and quiet
            and not observed.changed
        )
    if isinstance(expected, Failed):
        return (
            observed.exit_code in (None, 0)
            and not observed.dead_letters
            and len(observed.failures) == 1
            and expected.says in observed.failures[0]
            and "\n" not in observed.failures[0]
            and "/" not in observed.failures[0]
        )
    if isinstance(expected, Quiet):
        return (
            observed.exit_code == BROKEN_PIPE_EXIT
            and not observed.error_line
            and quiet
            and not observed.changed
        )
    if isinstance(expected, DeadLetter):
        return (
            observed.exit_code is None
            and len(observed.dead_letters) == 1
            and expected.says in observed.dead_letters[0][1]
            and not observed.failures
            and not observed.changed
        )
    return quiet and not observed.changed


@contextmanager
def bad_input_deployment(work_dir: Path) -> Iterator[Deployment]:
    """A deployment with tenants acme and zeta, acme's done and spare requests, one worker
    process per queue and a disabled zoo model Triton does not serve; everything is stopped
    and dropped afterwards."""
    from sqlalchemy import make_url

    from db.inference import mark_failed
    from db.jobs import create_job
    from db.models import Request, RoutingDecision, ZooModel
    from db.scratch import scratch_database
    from db.zoo import ModelSpec, upsert_models
    from router.synthetic import synthetic_zoo
    from tests.answered import answer_by_hand
    from tests.e2e.conftest import POSTGRES_ADMIN, claimed_redis_database, require_services
    from workers import queues, runtime
    from workers.fleet import local_deployment
    from workers.provision import add_tenant, register_zoo
    from workers.publish import publish_route
    from workers.zoo_server import start_zoo_process

    require_services()
    data = synthetic_zoo(2000, seed=0).data
    n_proofs = {queue: 0 for queue in ("route", "model", "feedback")}
    for case in CASES:
        if isinstance(case.input, Message) and case.input.queue in n_proofs:
            n_proofs[case.input.queue] += 1
    n_done = n_proofs["feedback"] + 1
    n_spare = n_proofs["route"] + n_proofs["model"] + 2
    with (
        claimed_redis_database() as broker_url,
        scratch_database(POSTGRES_ADMIN, "messplus_badin") as url,
        start_zoo_process(None) as zoo,
        local_deployment(
            work_dir / "logs",
            database_url=make_url(url)
            .set(password=DB_PASSWORD)
            .render_as_string(hide_password=False),
            broker_url=broker_url,
            triton_url=zoo.grpc_url,
            chunk_size="50",
        ) as fleet,
    ):
        sessions = runtime.sessions()
        with sessions.begin() as session:
            register_zoo(session, data)
            ghost = ModelSpec(
                name=_GHOST,
                triton_model_name=_GHOST,
                position=len(data.models),
                cost_per_request=1.0,
                cost_per_token=0.0,
                cost_unit="J",
                enabled=False,
            )
            upsert_models(session, [ghost])
            acme_id = add_tenant(session, "acme", 0.6).id
            add_tenant(session, "zeta", 0.7)
            job_id, request_ids = create_job(
                session, acme_id, list(data.prompts[: n_done + n_spare]), "bad inputs"
            )
        fleet.start("route", [queues.ROUTE])
        for model in data.models:
            fleet.start(f"model-{model}", [queues.model_queue(model)])
        fleet.start("feedback", [queues.FEEDBACK])
        # At INFO, so that Celery's "succeeded" line shows a train message was processed.
        fleet.start("train", [queues.TRAIN], loglevel="INFO")
        done, spare = request_ids[:n_done], request_ids[n_done:]
        publish_route(done, 50)

        def all_done() -> bool:
            with sessions.begin() as session:
                statuses = session.scalars(select(Request.status).where(Request.id.in_(done)))
                return set(statuses) == {"done"}

        wait_until(all_done, "the first requests to be answered", fleet)
        with sessions.begin() as session:
            explored = set(
                session.scalars(
                    select(RoutingDecision.request_id).where(
                        RoutingDecision.request_id.in_(done), RoutingDecision.explored
                    )
                )
            )
            done.sort(key=lambda request_id: request_id in explored)  # unexplored first
            served = session.get_one(Request, done[0]).served_model_id
            model = session.get_one(ZooModel, served).name
            unasked = next(m for m in data.models if m != model)
        failed = spare.pop()
        answer_by_hand(sessions, [failed], served, answered_by=[])
        with sessions.begin() as session:
            mark_failed(session, [failed], f"{model}: unavailable")
        (work_dir / "cli").mkdir(exist_ok=True)
        yield Deployment(
            fleet=fleet,
            sessions=sessions,
            work_dir=work_dir,
            acme_id=acme_id,
            model=model,
            placeholders={
                "done": str(done[0]),
                "queued": str(spare[0]),
                "failed": str(failed),
                "acme_job": job_id,
                "model": model,
                "unasked": unasked,
                "ids_10001": ", ".join(str(i) for i in range(1, 10_002)),
                "huge": "x" * HUGE_CHARS,
                "password": DB_PASSWORD,
            },
            spare=list(spare[1:]),
            unrated=list(done[1:]),
            reserved=frozenset(spare[1:]) | frozenset(done[1:]),
        )


def try_case(deployment: Deployment, case: Case) -> Observed:
    """Run one case on the deployment and report what it got."""
    from db.models import DeadLetter as DeadLetterRow
    from db.models import Request

    with deployment.sessions.begin() as session:
        last_letter = session.scalar(select(func.max(DeadLetterRow.id))) or 0
        failed_before = set(session.scalars(select(Request.id).where(Request.status == "failed")))
    before = _footprint(deployment)
    if isinstance(case.input, Command):
        exit_code, output, error_line = _run_command(deployment, case.input)
        proof = "-"
        shows_password = DB_PASSWORD in output
    else:
        _publish(deployment, case.input)
        # One solo worker per queue takes messages in order: once the next one is
        # processed, the bad one has been.
        proof = _prove_consuming(deployment, case.input.queue)
        exit_code, error_line, shows_password = None, "", False
    with deployment.sessions.begin() as session:
        letters = tuple(
            (queue, reason)
            for queue, reason in session.execute(
                select(DeadLetterRow.queue, DeadLetterRow.reason)
                .where(DeadLetterRow.id > last_letter)
                .order_by(DeadLetterRow.id)
            )
        )
        failures = tuple(
            reason or ""
            for request_id, reason in session.execute(
                select(Request.id, Request.failure_reason).where(Request.status == "failed")
            )
            if request_id not in failed_before
        )
    after = _footprint(deployment)
    changed = tuple(name for name in before if before[name] != after[name])
    return Observed(
        got=_describe(exit_code, error_line, letters, failures, changed),
        proof=proof,
        exit_code=exit_code,
        error_line=error_line,
        dead_letters=letters,
        failures=failures,
        changed=changed,
        shows_password=shows_password,
    )


def wait_until(condition: Callable[[], bool], what: str, fleet: Fleet) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}\n{fleet.logs()}")
        time.sleep(0.05)


def _fill(template: str, deployment: Deployment, file: Path | None = None) -> str:
    values = dict(deployment.placeholders)
    if file is not None:
        values["file"] = str(file)
    return string.Template(template).substitute(values)


def _run_command(deployment: Deployment, command: Command) -> tuple[int, str, str]:
    """(exit status, everything printed, the last line on stderr) of `messplus ARGS`."""
    from db.jobs import job_progress

    cli_dir = deployment.work_dir / "cli"
    file = None
    if command.file is not None:
        file = cli_dir / f"input-{uuid.uuid4().hex[:8]}"
        content = command.file
        if isinstance(content, str):
            content = _fill(content, deployment).encode("utf-8")
        file.write_bytes(content)
    environment = dict(deployment.fleet.environment)
    environment |= {f"MESSPLUS_{k}": _fill(v, deployment) for k, v in command.env}
    args = [
        sys.executable,
        "-m",
        "workers.cli",
        *shlex.split(_fill(command.args, deployment, file)),
    ]
    result = run_with_stdout(args, command.stdout, cwd=cli_dir, env=environment, timeout_s=WAIT_S)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    error_line = lines[-1] if result.returncode != 0 and lines else ""
    if file is not None:
        error_line = error_line.replace(str(file), "$file")
    job = re.fullmatch(r"([0-9a-f]{32})\n", result.stdout)
    if result.returncode == 0 and job is not None:
        # A submitted job: its requests reach their final states before the case ends.
        def finished() -> bool:
            with deployment.sessions.begin() as session:
                return job_progress(session, job.group(1), deployment.acme_id).finished

        wait_until(finished, f"job {job.group(1)}", deployment.fleet)
    return result.returncode, result.stdout + result.stderr, error_line


def _publish(deployment: Deployment, message: Message) -> None:
    from tests.faults.envelopes import publish_raw, task_headers
    from workers import queues
    from workers.app import app

    queue = queues.model_queue(deployment.model) if message.queue == "model" else message.queue
    body = _fill(message.body, deployment)
    if not message.raw:
        task = {"route": "route", "model": "infer", "feedback": "feedback", "train": "train"}
        app.send_task(f"messplus.{task[message.queue]}", args=[json.loads(body)], queue=queue)
        return
    pickled = message.content_type == "application/x-python-serialize"
    headers = {}
    if message.task is not None:
        headers = task_headers(message.task, json.loads(_fill(message.headers, deployment)))
    publish_raw(
        queue,
        pickle.dumps(json.loads(body)) if pickled else body.encode("utf-8"),
        headers,
        content_type=message.content_type,
        content_encoding="binary" if pickled else "utf-8",
    )


def _prove_consuming(deployment: Deployment, queue: str) -> str:
    """Publish a good message on the queue and wait until it is processed; says how."""
    from db.models import Feedback, Request, utcnow
    from db.pending_ratings import SubmittedRating
    from workers import queues
    from workers.app import app
    from workers.messages import TrainRequest
    from workers.publish import publish_infer, publish_route
    from workers.ratings import submit_ratings

    sessions, fleet = deployment.sessions, deployment.fleet

    def status(request_id: int) -> str:
        with sessions.begin() as session:
            return session.get_one(Request, request_id).status

    if queue == "train":
        task_id = uuid.uuid4().hex
        app.send_task(
            "messplus.train",
            args=[TrainRequest(dry_run=True).to_json()],
            queue=queues.TRAIN,
            task_id=task_id,
        )
        log = deployment.work_dir / "logs" / "train.log"
        wait_until(lambda: f"[{task_id}] succeeded" in log.read_text(), "a train message", fleet)
        return "next train message (a dry run) succeeded"
    if queue == "feedback":
        request_id = deployment.unrated.pop()
        rating = SubmittedRating(request_id, True, None, utcnow())
        submit_ratings(sessions, deployment.acme_id, [rating], 1)

        def rated() -> bool:
            with sessions.begin() as session:
                found = select(Feedback.id).where(Feedback.request_id == request_id)
                return session.scalar(found) is not None

        wait_until(rated, f"the rating of request {request_id}", fleet)
        return f"next rating stored (request {request_id})"
    request_id = deployment.spare.pop()
    if queue == "route":
        publish_route([request_id], 1)
    else:
        _route_by_hand(deployment, request_id)
        publish_infer(deployment.model, [request_id], 1)
    wait_until(lambda: status(request_id) == "done", f"request {request_id}", fleet)
    return f"next {queue} message answered (request {request_id} done)"


def _route_by_hand(deployment: Deployment, request_id: int) -> None:
    """Decide a request for the model under test, as a router would, without the router."""
    from db.routing import Decision, claim_queued, record_decisions
    from db.zoo import get_model_by_name, list_models

    with deployment.sessions.begin() as session:
        model = get_model_by_name(session, deployment.model)
        assert [r.id for r in claim_queued(session, [request_id])] == [request_id]
        record_decisions(
            session,
            [
                Decision(
                    request_id=request_id,
                    tenant_id=deployment.acme_id,
                    t=0,
                    probabilities=[0.5] * len(list_models(session)),
                    virtual_queue=0.0,
                    explored=False,
                    chosen_model_id=model.id,
                )
            ],
        )


def _footprint(deployment: Deployment) -> dict[str, int]:
    """Row counts a refused or dead-lettered input must leave alone (proofs excluded)."""
    from db.models import Feedback, Job, PredictorVersion, Response, Tenant, ZooModel

    proofs = deployment.reserved
    with deployment.sessions.begin() as session:
        return {
            "jobs": session.scalar(select(func.count()).select_from(Job)) or 0,
            "zoo models": session.scalar(select(func.count()).select_from(ZooModel)) or 0,
            "tenants": session.scalar(select(func.count()).select_from(Tenant)) or 0,
            "ratings": session.scalar(
                select(func.count()).where(Feedback.request_id.not_in(proofs))
            )
            or 0,
            "answers": session.scalar(
                select(func.count()).where(Response.request_id.not_in(proofs))
            )
            or 0,
            "predictor versions": session.scalar(select(func.count()).select_from(PredictorVersion))
            or 0,
        }


def _describe(
    exit_code: int | None,
    error_line: str,
    letters: tuple[tuple[str, str], ...],
    failures: tuple[str, ...],
    changed: tuple[str, ...],
) -> str:
    parts = []
    if exit_code is not None:
        parts.append(f"exit {exit_code}" + (f": {error_line}" if error_line else ""))
    parts += [f"dead letter on {queue}: {reason}" for queue, reason in letters]
    parts += [f"request failed: {reason}" for reason in failures]
    if changed and exit_code != 0:
        parts.append(f"changed: {', '.join(changed)}")
    return "; ".join(parts) or "consumed, nothing changed"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    with bad_input_deployment(tmp_path_factory.mktemp("bad-inputs")) as running:
        yield running


@pytest.mark.parametrize("case", CASES, ids=[f"{i:02d}" for i in range(len(CASES))])
def test_bad_input_gets_its_outcome_and_the_worker_keeps_consuming(
    deployment: Deployment, case: Case
) -> None:
    observed = try_case(deployment, case)
    assert matches(case.expected, observed), (case, observed)
