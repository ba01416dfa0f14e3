"""Every command the `messplus` parser knows, run as a process of its own with a broken
database URL of each kind, a broken broker URL of each kind, a closed stdout and a stdout
whose reader is gone: each ends in one error line and status 2, or (reader gone) quietly
with status 141. Never a traceback, never a hang.

The commands are read from the parser itself (workers.cli.build_parser), so a command added
later is swept without anyone listing it here; its required arguments are filled in by
their `dest` from SAMPLES, and a dest SAMPLES does not know fails the sweep by name. What
a command uses (`uses`, checked by main() before it runs) decides which broken URLs apply:
a malformed URL of either kind to every command that reads the settings, an unreachable
database to those that use the database, an unreachable broker to those that use the
broker. A command using neither (replay, demo, zoo serve) reads no setting and is swept
for its stdout only.

The healthy deployment behind the commands is real: a migrated SQLite database with the
synthetic zoo, a tenant, a job with one answered request and a predictor version, a
Redis database of this run's own, a CPU Triton serving the zoo and an API key of the
tenant's (revoking it again is harmless).
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.processes import run_with_stdout
from workers.cli import BROKEN_PIPE_EXIT, BROKER, DATABASE, build_parser, uses

pytestmark = pytest.mark.services

RUN_TIMEOUT_S = 180.0
PARALLEL = 3
DB_PASSWORD = "Sweep-pw-3xq"

# Required arguments by their dest; $work is the sweep's working directory.
SAMPLES: dict[str, str] = {
    "file": "$work/prompts.jsonl",
    "tenant": "acme",
    "job": "$job",
    "name": "acme",
    "alpha": "0.6",
    "version_id": "1",
    "revision": "head",
    "csv": "$work/zoo.csv",
    "data": "$work/zoo.csv",
    "model": "$model",
    "out_dir": "$work/report",
    "key_id": "1",
}
# Per command: other samples, and options that make it reach its output quickly.
OVERRIDES: dict[tuple[str, ...], dict[str, str]] = {
    ("feedback",): {"file": "$work/ratings.jsonl"},
    ("tenants", "add"): {"name": "swept"},
    # Models whose change leaves the zoo the other commands see as it was: two spare,
    # disabled rows, and enabling a model that is enabled already.
    ("zoo", "disable"): {"name": "spare-a"},
    ("zoo", "enable"): {"name": "$model"},
    ("zoo", "remove"): {"name": "spare-b"},
    ("zoo", "template"): {"file": "$work/template.jinja"},
}
OPTIONS: dict[tuple[str, ...], str] = {
    ("demo",): "--prompts 8",
    ("replay",): "--seeds 0 --policy messplus",
    ("train",): "--publish",
    ("report",): "--tenant acme",
    ("metrics", "serve"): "--port 0",
    ("zoo", "serve"): "--grpc-port 0 --http-port 0",
    ("api", "serve"): "--port 0",
}


@dataclass(frozen=True)
class Condition:
    """One way of breaking a run: an environment override or what stdout is."""

    name: str
    env: tuple[tuple[str, str], ...] = ()
    stdout: str = "pipe"  # pipe (read by the test), gone (reader closed), closed (fd 1 closed)
    applies_to: str = "settings"  # settings, database, broker or all
    says: str = ""


CONDITIONS = (
    Condition(
        "database URL of an unsupported database",
        (("MESSPLUS_DATABASE_URL", "mysql://root@127.0.0.1/x"),),
        says="unsupported database mysql://root@127.0.0.1/x",
    ),
    Condition(
        "database URL that is not a URL",
        (("MESSPLUS_DATABASE_URL", "notaurl"),),
        says="not a database URL",
    ),
    Condition(
        "database that refuses connections",
        (("MESSPLUS_DATABASE_URL", f"postgresql://postgres:{DB_PASSWORD}@127.0.0.1:1/none"),),
        applies_to=DATABASE,
        says="cannot use database postgresql://postgres:***@127.0.0.1:1/none",
    ),
    Condition(
        "broker URL of an unknown transport",
        (("MESSPLUS_BROKER_URL", "foo://bar"),),
        says="unknown broker transport 'foo'",
    ),
    Condition(
        "broker URL that is not a URL",
        (("MESSPLUS_BROKER_URL", "notaurl"),),
        says="not a broker URL",
    ),
    Condition(
        "broker that refuses connections",
        (("MESSPLUS_BROKER_URL", "redis://127.0.0.1:1/0"),),
        applies_to=BROKER,
        says="broker redis://127.0.0.1:1/0 unreachable",
    ),
    Condition("stdout closed", stdout="closed", applies_to="all", says="standard output is closed"),
    Condition("stdout's reader gone", stdout="gone", applies_to="all"),
)


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    code: int | None
    stdout: str
    stderr: str


def leaf_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command of the parser: parsers without sub-commands, and parsers whose
    sub-command is optional (`messplus predictors` and `messplus predictors activate`)."""
    groups = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not groups or not groups[0].required:
        yield path, parser
    for group in groups:
        for name, child in group.choices.items():
            yield from leaf_commands(child, (*path, name))


def sample_argv(path: tuple[str, ...], parser: argparse.ArgumentParser) -> list[str]:
    """The command with its required arguments filled in from SAMPLES."""
    samples = SAMPLES | OVERRIDES.get(path, {})
    argv = list(path)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction | argparse._HelpAction):
            continue
        if action.option_strings and not action.required:
            continue
        if action.dest not in samples:
            raise AssertionError(
                f"`messplus {' '.join(path)}` has a required argument {action.dest!r}: "
                "add a sample value for it to SAMPLES in tests/cli/test_cli_sweep.py"
            )
        argv += [*action.option_strings[:1], samples[action.dest]]
    return argv + shlex.split(OPTIONS.get(path, ""))


COMMANDS = sorted(leaf_commands(build_parser()))


@dataclass
class Deployment:
    work: Path
    env: dict[str, str]
    placeholders: dict[str, str]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    from db.api_keys import create_key
    from db.engine import make_engine, make_sessionmaker
    from db.jobs import create_job
    from db.migrate import upgrade
    from db.predictors import publish_version
    from db.zoo import ModelSpec, upsert_models
    from router.dataset import write_csv
    from router.predictor import SatisfactionPredictor
    from router.synthetic import synthetic_zoo
    from tests.e2e.conftest import claimed_redis_database, require_services
    from workers.inference import answer_chunk
    from workers.provision import add_tenant, register_zoo
    from workers.routing import PredictorCache, route_chunk
    from workers.triton_client import connect
    from workers.zoo_server import start_zoo_process

    require_services()
    work = tmp_path_factory.mktemp("sweep")
    url = f"sqlite:///{work / 'messplus.db'}"
    upgrade(url)
    data = synthetic_zoo(2000, seed=0).data
    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    with (
        claimed_redis_database() as broker_url,
        start_zoo_process(None) as zoo,
        connect(zoo.grpc_url) as client,
    ):
        with sessions.begin() as session:
            register_zoo(session, data)
            upsert_models(
                session,
                [
                    ModelSpec(
                        name=name,
                        triton_model_name=name,
                        position=data.n_models + offset,
                        cost_per_request=1.0,
                        cost_per_token=0.0,
                        cost_unit="J",
                        enabled=False,
                    )
                    for offset, name in enumerate(("spare-a", "spare-b"))
                ],
            )
            acme = add_tenant(session, "acme", 0.6).id
            create_key(session, acme)  # key 1 of the fresh database
            publish_version(
                session,
                SatisfactionPredictor.base_rates(data.n_models).to_bytes(),
                {},
                "sweep",
                activate=True,
            )
            job_id, (request_id,) = create_job(session, acme, [data.prompts[0]], "sweep")
        routed = route_chunk(sessions, [request_id], np.random.default_rng(0), PredictorCache())
        for model, ids in routed.items():
            answer_chunk(sessions, client, model, ids, max_tokens=16)
        engine.dispose()
        (work / "prompts.jsonl").write_text('"hello"\n')
        (work / "template.jinja").write_text("{{ messages[-1]['content'] }}")
        (work / "ratings.jsonl").write_text(f'{{"request_id": {request_id}, "satisfied": true}}\n')
        write_csv(synthetic_zoo(60, seed=0).data, work / "zoo.csv")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MESSPLUS_")}
        env |= {
            "MESSPLUS_DATABASE_URL": url,
            "MESSPLUS_BROKER_URL": broker_url,
            "MESSPLUS_TRITON_URL": zoo.grpc_url,
            "PYTRITON_HOME": str(work / "pytriton"),
        }
        placeholders = {"work": str(work), "job": job_id, "model": data.models[0]}
        yield Deployment(work, env, placeholders)


def _run(deployment: Deployment, argv: list[str], condition: Condition) -> Outcome:
    filled = list(argv)
    for key, value in deployment.placeholders.items():
        filled = [arg.replace(f"${key}", value) for arg in filled]
    try:
        result = run_with_stdout(
            [sys.executable, "-m", "workers.cli", *filled],
            condition.stdout,
            cwd=deployment.work,
            env=deployment.env | dict(condition.env),
            timeout_s=RUN_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr or ""
        return Outcome(tuple(filled), None, "", err)
    return Outcome(tuple(filled), result.returncode, result.stdout, result.stderr)


def _applies(condition: Condition, used: frozenset[str]) -> bool:
    if condition.applies_to == "all":
        return True
    if condition.applies_to == "settings":
        return bool(used)
    return condition.applies_to in used


def _problem(condition: Condition, outcome: Outcome) -> str | None:
    """What is wrong with how a command ended under the condition, or None."""
    shown = f"`messplus {shlex.join(outcome.argv)}`: "
    if outcome.code is None:
        return shown + f"still running after {RUN_TIMEOUT_S:g} s; stderr: {outcome.stderr!r}"
    if DB_PASSWORD in outcome.stdout + outcome.stderr:
        return shown + "shows the database password"
    if condition.stdout == "gone":
        if outcome.code != BROKEN_PIPE_EXIT or "Traceback" in outcome.stderr:
            return shown + f"exit {outcome.code}, stderr {outcome.stderr!r}"
        if "Exception ignored" in outcome.stderr or "BrokenPipe" in outcome.stderr:
            return shown + f"not quiet: {outcome.stderr!r}"
        return None
    lines = outcome.stderr.strip().splitlines()
    if (
        outcome.code != 2
        or len(lines) != 1
        or not lines[0].startswith("messplus: error: ")
        or condition.says not in lines[0]
    ):
        return shown + f"exit {outcome.code}, stderr {outcome.stderr!r}"
    return None


def test_the_sweep_covers_every_command_with_what_it_uses() -> None:
    """Every command declares what it uses, and the sweep can fill in its arguments."""
    parser = build_parser()
    for path, command in COMMANDS:
        args = parser.parse_args(sample_argv(path, command))
        assert "uses" in vars(args), (
            f"`messplus {' '.join(path)}` declares no `uses`: add uses=frozenset(...) "
            "(DATABASE, BROKER or nothing) to its set_defaults"
        )
        assert uses(args) <= {DATABASE, BROKER}, path
    assert ("zoo", "list") in dict(COMMANDS) and ("zoo", "template") in dict(COMMANDS)
    assert ("api", "serve") in dict(COMMANDS) and ("tenants", "keys", "revoke") in dict(COMMANDS)
    assert ("predictors",) in dict(COMMANDS) and ("predictors", "activate") in dict(COMMANDS)


@pytest.mark.parametrize("condition", CONDITIONS, ids=[c.name for c in CONDITIONS])
def test_every_command_ends_in_one_line_or_quietly(
    deployment: Deployment, condition: Condition
) -> None:
    parser = build_parser()
    runs = [
        sample_argv(path, command)
        for path, command in COMMANDS
        if _applies(condition, uses(parser.parse_args(sample_argv(path, command))))
    ]
    assert runs, "no command applies"
    with ThreadPoolExecutor(PARALLEL) as pool:
        outcomes = list(pool.map(lambda argv: _run(deployment, argv, condition), runs))
    problems = [p for p in (_problem(condition, o) for o in outcomes) if p]
    assert not problems, "\n".join(problems)
