"""`messplus retrain`, `messplus predictors [activate ID]`, `messplus train FILE.csv` and
`messplus beat`: the predictor's versions, from training to rollback.

`retrain` runs the nightly job in this process (the same workers.training.retrain the
`messplus.train` task calls), so an operator can see the comparison and the decision
without a trainer worker or a broker. `predictors activate` is the rollback: routers switch
to the activated version on their next chunk.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workers.cli import BROKER, DATABASE, CliError
from workers.cli._input import positive_int
from workers.cli._table import print_table

if TYPE_CHECKING:
    from workers.training import Metrics, RetrainReport

__all__ = ["register"]

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DEFAULT_SCHEDULE = Path(".messplus") / "celerybeat-schedule"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    retrain = subparsers.add_parser(
        "retrain",
        help="retrain the predictor from all feedback, publish it if better",
        description="Train a fresh predictor on all feedback outside the held-out slice, "
        "compare it with the active version on the held-out ratings, and publish and "
        "activate it only if its log-loss is lower (the nightly job, run here).",
    )
    retrain.add_argument("--dry-run", action="store_true", help="evaluate, publish nothing")
    retrain.add_argument(
        "--batch-size",
        type=positive_int,
        default=10_000,
        metavar="N",
        help="ratings read per batch (default %(default)s)",
    )
    retrain.set_defaults(func=_retrain, uses=frozenset({DATABASE}))

    predictors = subparsers.add_parser(
        "predictors",
        help="list predictor versions, or activate one (rollback)",
        description="Without a command: every version, newest first, with its held-out metrics.",
    )
    predictors.set_defaults(func=_list, uses=frozenset({DATABASE}))
    commands = predictors.add_subparsers(dest="predictors_command", metavar="COMMAND")
    activate = commands.add_parser(
        "activate",
        help="make a version the active one",
        description="Routers switch to it on their next chunk, without a restart.",
    )
    activate.add_argument("version_id", type=positive_int, metavar="ID")
    activate.set_defaults(func=_activate, uses=frozenset({DATABASE}))

    train = subparsers.add_parser(
        "train",
        help="train a predictor from a labelled CSV (warm start)",
        description="Train a predictor on a labelled zoo CSV (one label column per model, "
        "cheapest first, matched to the zoo's enabled models by position).",
    )
    train.add_argument("csv", type=Path, metavar="FILE.csv")
    train.add_argument("--publish", action="store_true", help="store it as a new version")
    train.add_argument(
        "--activate",
        action="store_true",
        help="activate it even if a version is active (implies --publish)",
    )
    train.add_argument("--note", default="", help="note stored with the version")
    train.set_defaults(func=_train, uses=_train_uses)

    beat = subparsers.add_parser(
        "beat",
        help="run Celery beat: the nightly retraining schedule",
        description="Send messplus.train to the train queue every night at "
        "MESSPLUS_RETRAIN_HOUR:MESSPLUS_RETRAIN_MINUTE UTC. Run exactly one.",
    )
    beat.add_argument(
        "--schedule",
        type=Path,
        default=DEFAULT_SCHEDULE,
        metavar="FILE",
        help="where beat remembers the last run (default %(default)s)",
    )
    beat.add_argument(
        "--loglevel", type=str.upper, choices=LOG_LEVELS, default="INFO", help="default %(default)s"
    )
    beat.set_defaults(func=_beat, uses=frozenset({BROKER}))


def _train_uses(args: argparse.Namespace) -> frozenset[str]:
    """Training on a CSV needs no deployment; storing the result needs the database."""
    return frozenset({DATABASE}) if args.publish or args.activate else frozenset()


def _number(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else "-"


def _metric_row(name: str, metrics: Metrics) -> list[str]:
    return [
        name,
        _number(metrics.log_loss),
        _number(metrics.brier),
        _number(metrics.ece),
        f"{metrics.n:,}",
    ]


def _decision(report: RetrainReport) -> str:
    if report.published_version_id is not None:
        return f"published version {report.published_version_id} and activated it: {report.reason}"
    if report.dry_run:
        verdict = "would publish" if report.accepted else "would reject"
        return f"dry run, nothing published; {verdict}: {report.reason}"
    return f"rejected, nothing published: {report.reason}"


def _retrain(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from db.zoo import list_models
    from workers import runtime
    from workers.cli._context import transaction
    from workers.progress import progress_bar
    from workers.training import count_feedback, retrain

    with transaction() as session:
        if not any(m.enabled for m in list_models(session)):
            raise CliError("the zoo has no enabled model (`messplus zoo register` first)")
        total = count_feedback(session)
    bars: dict[str, tqdm[Any]] = {}

    def progress(stage: str, rows: int) -> None:
        if stage not in bars:
            for bar in bars.values():
                bar.close()
            bars[stage] = progress_bar(total, stage, "ratings")
        bars[stage].update(rows)

    try:
        report = retrain(
            runtime.sessions(), batch_size=args.batch_size, dry_run=args.dry_run, progress=progress
        )
    finally:
        for bar in bars.values():
            bar.close()
    rows = [_metric_row("candidate", report.candidate)]
    if report.active is not None:
        rows.append(_metric_row(f"active (version {report.active_version_id})", report.active))
    rows.append(_metric_row("constant base rates", report.baseline))
    print(
        f"trained on {report.train_ratings:,} ratings of {report.train_requests:,} requests "
        f"({report.n_models} models), held out {report.candidate.n:,} ratings"
        + (
            f", skipped {report.skipped_ratings:,} of disabled models"
            if report.skipped_ratings
            else ""
        )
        + f", costs fitted on {report.cost_answers:,} answers, {report.seconds:.1f} s"
    )
    print_table(("predictor", "log-loss", "Brier", "ECE", "n"), rows)
    print(_decision(report))
    return 0


def _list(args: argparse.Namespace) -> int:
    from db.predictors import list_versions
    from workers.cli._context import transaction

    rows = []
    with transaction() as session:
        for version in list_versions(session):
            metrics = version.metrics
            n = metrics.get("n")
            rows.append(
                [
                    str(version.id),
                    version.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    "yes" if version.active else "",
                    _number(metrics.get("log_loss")),
                    _number(metrics.get("brier")),
                    _number(metrics.get("ece")),
                    f"{n:,}" if isinstance(n, int) else "-",
                    version.note,
                ]
            )
    if not rows:
        print("no predictor versions (`messplus retrain` or `messplus train FILE.csv --publish`)")
        return 0
    print_table(("id", "created (UTC)", "active", "log-loss", "Brier", "ECE", "n", "note"), rows)
    return 0


def _activate(args: argparse.Namespace) -> int:
    from db.predictors import activate, active_version_id
    from workers.cli._context import transaction

    with transaction() as session:
        previous = active_version_id(session)
        activate(session, args.version_id)
    print(
        f"active predictor version: {previous if previous is not None else 'none'} -> "
        f"{args.version_id}"
    )
    return 0


def _train(args: argparse.Namespace) -> int:
    from db.predictors import active_version_id, publish_version
    from db.zoo import list_models
    from router.dataset import DatasetError
    from workers.cli._context import transaction
    from workers.training import train_from_csv

    publish = args.publish or args.activate
    if publish:
        with transaction() as session:  # fail on a missing zoo before the training
            models = [m.name for m in list_models(session) if m.enabled]
        if not models:
            raise CliError("the zoo has no enabled model (`messplus zoo register` first)")
    try:
        predictor = train_from_csv(args.csv)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    rows = int(predictor.trials[0])
    accuracy = ", ".join(f"{p:.3f}" for p in predictor.base_probability())
    print(
        f"trained on {rows:,} labelled prompts x {predictor.n_models} models "
        f"(accuracy by position: {accuracy})"
    )
    if not publish:
        print("not published (add --publish to store it as a version)")
        return 0
    if predictor.n_models != len(models):
        raise CliError(
            f"{args.csv} labels {predictor.n_models} models but the zoo has {len(models)} "
            f"enabled ({', '.join(models)}); nothing published"
        )
    metrics = {"source": "csv", "file": args.csv.name, "train_requests": rows}
    note = args.note or f"csv: {args.csv.name}"
    with transaction() as session:
        make_active = args.activate or active_version_id(session) is None
        version = publish_version(
            session, predictor.to_bytes(), metrics, note, activate=make_active
        )
        version_id = version.id
    state = "active" if make_active else "inactive (`messplus predictors activate ID`)"
    print(f"published version {version_id}, {state}")
    return 0


def _beat(args: argparse.Namespace) -> int:
    from workers.app import app
    from workers.cli._context import check_broker, settings

    config = settings()
    check_broker()  # Celery beat would retry an unreachable broker forever, quietly
    args.schedule.parent.mkdir(parents=True, exist_ok=True)
    # The first line on stdout: a reader already gone ends the command here, quietly.
    print(
        f"messplus: starting beat: retraining nightly at "
        f"{config.retrain_hour:02d}:{config.retrain_minute:02d} UTC, reconciling every "
        f"{config.reconcile_every_s:g} s",
        flush=True,
    )
    app.start(["beat", f"--schedule={args.schedule}", f"--loglevel={args.loglevel}"])
    return 0
