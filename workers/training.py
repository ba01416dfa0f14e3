"""Retraining the satisfaction predictor from every stored rating, and publishing it only
if it predicts held-out ratings better than what routers use now.

Plain functions, no Celery: the nightly task, the `messplus retrain` command and the
benchmark call the same `retrain`.

- Memory is bounded however much feedback there is: ratings are streamed in batches twice
  (once to train, once to evaluate), never loaded whole. Keeping the held-out slice in
  memory instead would save the second pass but grow with the table.
- The split is by a stable hash of the request id, so it is the same every night and in
  every process: a version published by an earlier run never trained on the requests it is
  now evaluated on, and all ratings of one request stay on one side (an explored request's
  ratings are one label vector).
- Versions are compared as stored. A router replaces the base layer's counts with the
  zoo's live counts (workers.routing), but those include the held-out ratings, so scoring
  with them would grade the predictors on labels they were given.
- A rejected candidate is not stored: each blob is a few megabytes and a nightly job that
  keeps losing would fill the table with versions nobody can use. The report says why it
  lost; `messplus retrain --dry-run` shows the same comparison without publishing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.feedback import FeedbackExample, iter_feedback_batches
from db.inference import iter_answer_costs
from db.models import Feedback, PredictorVersion
from db.predictors import active_version, publish_version
from db.zoo import list_models
from router.dataset import ZooData, load_csv
from router.predictor import PredictorError, SatisfactionPredictor

__all__ = [
    "CSV_BATCH",
    "ECE_BINS",
    "Metrics",
    "Progress",
    "RetrainReport",
    "count_feedback",
    "held_out",
    "retrain",
    "train_from_csv",
    "train_from_data",
]

ECE_BINS = 10
CSV_BATCH = 10_000
# Answers the nightly cost fit reads, newest first: a few parameters per model and n-gram
# need far fewer, and today's prices matter more than last year's.
COST_FIT_ANSWERS = 200_000
_EPS = 1e-6

# Called after every streamed batch with the pass ("train" or "evaluate") and its rows.
Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class Metrics:
    """How well a predictor's probabilities match held-out ratings (lower is better)."""

    log_loss: float
    brier: float
    ece: float
    n: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Scores:
    """Running sums behind Metrics, so evaluation needs no memory per rating."""

    log_loss: float = 0.0
    brier: float = 0.0
    n: int = 0
    bin_count: npt.NDArray[np.int64] = field(default_factory=lambda: np.zeros(ECE_BINS, np.int64))
    bin_p: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(ECE_BINS))
    bin_y: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(ECE_BINS))

    def add(self, p: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> None:
        clipped = np.clip(p, _EPS, 1.0 - _EPS)
        self.log_loss -= float(np.sum(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped)))
        self.brier += float(np.sum((p - y) ** 2))
        self.n += len(p)
        bins = np.minimum((p * ECE_BINS).astype(np.int64), ECE_BINS - 1)
        self.bin_count += np.bincount(bins, minlength=ECE_BINS)
        self.bin_p += np.bincount(bins, weights=p, minlength=ECE_BINS)
        self.bin_y += np.bincount(bins, weights=y, minlength=ECE_BINS)

    def metrics(self) -> Metrics:
        if self.n == 0:
            return Metrics(float("nan"), float("nan"), float("nan"), 0)
        ece = float(np.sum(np.abs(self.bin_p - self.bin_y)) / self.n)
        return Metrics(self.log_loss / self.n, self.brier / self.n, ece, self.n)


@dataclass
class RetrainReport:
    """What one retraining run found and did.

    `published_version_id` is set only when the candidate was stored and activated;
    `accepted` says whether it was better, which a dry run reports without publishing.
    """

    accepted: bool
    reason: str
    dry_run: bool
    candidate: Metrics
    baseline: Metrics
    active: Metrics | None
    active_version_id: int | None
    published_version_id: int | None
    n_models: int
    train_ratings: int
    train_requests: int
    skipped_ratings: int
    cost_answers: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["active"] = None if self.active is None else self.active.to_json()
        return document


@dataclass(frozen=True)
class _LabelBatch:
    """Requests with their label vectors: row i is request_ids[i] with prompts[i]."""

    request_ids: npt.NDArray[np.int64]
    prompts: list[str]
    satisfied: npt.NDArray[np.float64]
    known: npt.NDArray[np.bool_]

    def take(self, rows: npt.NDArray[np.bool_]) -> _LabelBatch:
        index = np.flatnonzero(rows)
        return _LabelBatch(
            self.request_ids[index],
            [self.prompts[i] for i in index],
            self.satisfied[index],
            self.known[index],
        )


def held_out(request_ids: npt.ArrayLike, fraction: float) -> npt.NDArray[np.bool_]:
    """Whether each request belongs to the held-out slice: splitmix64 of its id, so the
    same request is on the same side in every run and process (unlike Python's hash())."""
    z = np.asarray(request_ids, dtype=np.int64).astype(np.uint64)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) / float(1 << 53) < fraction


def count_feedback(session: Session) -> int:
    """How many ratings a retraining run will stream (for progress bars)."""
    return int(session.scalar(select(func.count()).select_from(Feedback)) or 0)


def _by_request(
    batches: Iterable[list[FeedbackExample]], column: dict[int, int], n_models: int
) -> Iterator[tuple[_LabelBatch, int]]:
    """Ratings regrouped into one label vector per request, with the rows each batch read.

    Rows arrive ordered by request, but a batch may end in the middle of one request's
    ratings: the last request of every batch waits for the next batch. Ratings of a model
    not in `column` (disabled since) are skipped and counted as rows read.
    """
    tail: list[FeedbackExample] = []
    for batch in batches:
        if not batch:
            continue
        rows = tail + batch
        last = rows[-1].request_id
        cut = len(rows)
        while cut > 0 and rows[cut - 1].request_id == last:
            cut -= 1
        tail = rows[cut:]
        yield _group(rows[:cut], column, n_models), len(batch)
    if tail:
        yield _group(tail, column, n_models), 0


class _Answered(Protocol):
    """A fact about one model's answer to one prompt, as the nightly passes read them."""

    @property
    def request_id(self) -> int: ...
    @property
    def prompt(self) -> str: ...
    @property
    def model_position(self) -> int: ...


_Row = TypeVar("_Row", bound=_Answered)


def _per_request(
    rows: Sequence[_Row], column: dict[int, int], n_models: int, value: Callable[[_Row], float]
) -> tuple[list[int], list[str], npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Rows (ordered by request) regrouped into one vector per request: request ids,
    prompts, value per model and whether it is known. Rows of a model not in `column`
    (disabled since) are left out."""
    usable = [row for row in rows if row.model_position in column]
    request_ids: list[int] = []
    prompts: list[str] = []
    values = np.zeros((len(usable), n_models))
    known = np.zeros((len(usable), n_models), dtype=bool)
    for row in usable:
        if not request_ids or request_ids[-1] != row.request_id:
            request_ids.append(row.request_id)
            prompts.append(row.prompt)
        r, m = len(request_ids) - 1, column[row.model_position]
        values[r, m] = value(row)
        known[r, m] = True
    k = len(request_ids)
    return request_ids, prompts, values[:k], known[:k]


def _group(rows: Sequence[FeedbackExample], column: dict[int, int], n_models: int) -> _LabelBatch:
    request_ids, prompts, satisfied, known = _per_request(
        rows, column, n_models, lambda row: float(row.satisfied)
    )
    return _LabelBatch(np.asarray(request_ids, dtype=np.int64), prompts, satisfied, known)


def _stream(
    sessions: sessionmaker[Session],
    batch_size: int,
    column: dict[int, int],
    n_models: int,
    stage: str,
    progress: Progress | None,
) -> Iterator[tuple[_LabelBatch, int]]:
    """One pass over every rating, in its own read transaction: label vectors and the
    number of rating rows read for them."""
    with sessions() as session, session.begin():
        batches = iter_feedback_batches(session, batch_size)
        for labels, rows in _by_request(batches, column, n_models):
            if progress is not None and rows:
                progress(stage, rows)
            yield labels, rows


def _fit_costs(
    sessions: sessionmaker[Session],
    predictor: SatisfactionPredictor,
    column: dict[int, int],
    batch_size: int,
) -> int:
    """Fit the predictor's per-request cost model on the newest answers' charged costs;
    returns how many answers it learned from."""
    fitted = 0
    with sessions() as session, session.begin():
        for batch in iter_answer_costs(session, COST_FIT_ANSWERS, batch_size):
            _, prompts, cost, known = _per_request(
                batch, column, predictor.n_models, lambda answer: answer.cost
            )
            if prompts:
                cost[~known] = np.nan  # a model that did not answer the request
                predictor.observe_costs(predictor.featuriser.featurise(prompts), cost)
                fitted += int(known.sum())
    return fitted


def _load_active(
    sessions: sessionmaker[Session], n_models: int
) -> tuple[int | None, SatisfactionPredictor | None]:
    """The active version if routers would use it: a version for another zoo size, or
    one that cannot be loaded, is ignored by routers too (they start from base rates)."""
    with sessions.begin() as session:
        version = active_version(session)
        if version is None:
            return None, None
        try:
            predictor = SatisfactionPredictor.from_bytes(version.blob)
        except PredictorError:
            return version.id, None
    if predictor.n_models != n_models:
        return version.id, None
    return version.id, predictor


def _decide(
    candidate: Metrics, baseline: Metrics, active: Metrics | None, active_id: int | None
) -> tuple[bool, str]:
    if candidate.n == 0:
        return False, "no held-out ratings to evaluate on"
    if active is not None:
        if candidate.log_loss < active.log_loss:
            return True, (
                f"held-out log-loss {candidate.log_loss:.5f} is below "
                f"{active.log_loss:.5f} of version {active_id}"
            )
        return False, (
            f"held-out log-loss {candidate.log_loss:.5f} is not below "
            f"{active.log_loss:.5f} of version {active_id}, which stays active"
        )
    if candidate.log_loss < baseline.log_loss:
        return True, (
            f"held-out log-loss {candidate.log_loss:.5f} is below "
            f"{baseline.log_loss:.5f} of constant base rates (no usable active version)"
        )
    return False, (
        f"held-out log-loss {candidate.log_loss:.5f} is not below "
        f"{baseline.log_loss:.5f} of constant base rates"
    )


def _publish(
    sessions: sessionmaker[Session],
    predictor: SatisfactionPredictor,
    metrics: dict[str, Any],
    note: str,
    compared_with: int | None,
) -> tuple[int | None, str]:
    """Store and activate the candidate unless the active version changed meanwhile (a
    rollback or another trainer): it was not compared against the new one."""
    blob = predictor.to_bytes()
    with sessions.begin() as session:
        current = session.scalar(
            select(PredictorVersion.id).where(PredictorVersion.active).with_for_update()
        )
        if current != compared_with:
            return None, (
                f"the active version changed from {compared_with} to {current} during "
                "training; nothing published"
            )
        version = publish_version(session, blob, metrics, note, activate=True)
        return version.id, ""


def retrain(
    sessions: sessionmaker[Session],
    *,
    batch_size: int = 10_000,
    holdout: float = 0.1,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RetrainReport:
    """Train a fresh predictor on all feedback outside the held-out slice; publish and
    activate it if it beats the active version (or, without one, constant base rates) on
    held-out log-loss. A dry run evaluates and publishes nothing."""
    if not 0.0 < holdout < 1.0:
        raise ValueError(f"holdout must be in (0, 1), got {holdout}")
    started = time.perf_counter()
    with sessions.begin() as session:
        positions = [m.position for m in list_models(session) if m.enabled]
    if not positions:
        raise RuntimeError("the zoo has no enabled model")
    n_models = len(positions)
    column = {position: i for i, position in enumerate(positions)}

    candidate = SatisfactionPredictor(n_models)
    successes, trials = np.zeros(n_models), np.zeros(n_models)
    train_ratings = train_requests = skipped = 0
    for labels, rows in _stream(sessions, batch_size, column, n_models, "train", progress):
        skipped += rows - int(labels.known.sum())
        part = labels.take(~held_out(labels.request_ids, holdout))
        if not len(part.prompts):
            continue
        candidate.observe(candidate.featuriser.featurise(part.prompts), part.satisfied, part.known)
        successes += np.where(part.known, part.satisfied, 0.0).sum(axis=0)
        trials += part.known.sum(axis=0)
        train_ratings += int(part.known.sum())
        train_requests += len(part.prompts)

    cost_answers = _fit_costs(sessions, candidate, column, batch_size)
    active_id, active = _load_active(sessions, n_models)
    base_rate = (successes + 0.5) / (trials + 1.0)
    scores = {"candidate": _Scores(), "baseline": _Scores(), "active": _Scores()}
    for labels, _ in _stream(sessions, batch_size, column, n_models, "evaluate", progress):
        part = labels.take(held_out(labels.request_ids, holdout))
        if not len(part.prompts):
            continue
        x = candidate.featuriser.featurise(part.prompts)
        y = part.satisfied[part.known]
        scores["candidate"].add(candidate.predict_features(x)[part.known], y)
        scores["baseline"].add(np.broadcast_to(base_rate, part.known.shape)[part.known], y)
        if active is not None:
            scores["active"].add(active.predict_features(x)[part.known], y)

    result = {name: s.metrics() for name, s in scores.items()}
    active_metrics = result["active"] if active is not None else None
    accepted, reason = _decide(result["candidate"], result["baseline"], active_metrics, active_id)
    published: int | None = None
    if accepted and not dry_run:
        metrics = {
            **result["candidate"].to_json(),
            "holdout": holdout,
            "train_ratings": train_ratings,
            "train_requests": train_requests,
            "baseline_log_loss": result["baseline"].log_loss,
            "compared_with": active_id,
            "compared_log_loss": None if active_metrics is None else active_metrics.log_loss,
        }
        note = f"retrain: {train_ratings} ratings of {train_requests} requests"
        published, refusal = _publish(sessions, candidate, metrics, note, active_id)
        if published is None:
            accepted, reason = False, refusal
    return RetrainReport(
        accepted=accepted,
        reason=reason,
        dry_run=dry_run,
        candidate=result["candidate"],
        baseline=result["baseline"],
        active=active_metrics,
        active_version_id=active_id,
        published_version_id=published,
        n_models=n_models,
        train_ratings=train_ratings,
        train_requests=train_requests,
        skipped_ratings=skipped,
        cost_answers=cost_answers,
        seconds=time.perf_counter() - started,
    )


def train_from_csv(path: str | Path) -> SatisfactionPredictor:
    """A predictor trained on a labelled zoo CSV (every row a full label vector), to start
    a deployment from offline data before any user has rated an answer.

    Raises router.dataset.DatasetError for a file that cannot be used.
    """
    return train_from_data(load_csv(path))


def train_from_data(data: ZooData) -> SatisfactionPredictor:
    """A predictor trained on labelled zoo data, every row a full label vector."""
    predictor = SatisfactionPredictor(data.n_models)
    known = np.ones((CSV_BATCH, data.n_models), dtype=bool)
    for start in range(0, data.n_requests, CSV_BATCH):
        prompts = list(data.prompts[start : start + CSV_BATCH])
        x = predictor.featuriser.featurise(prompts)
        predictor.observe(
            x, data.satisfied[start : start + CSV_BATCH].astype(np.float64), known[: len(prompts)]
        )
        predictor.observe_costs(x, data.cost[start : start + CSV_BATCH])
    return predictor
