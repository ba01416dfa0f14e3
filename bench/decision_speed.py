"""How fast the router decides, on one core: the decision path of router.messplus.

The live router featurises a chunk of prompts and calls decide_chunk once per tenant; a
single-request API call does the same with one prompt. Both are measured here apart from
featurising (whose speed is its own row), with a predictor trained on 5,000 explored
requests of the synthetic zoo so the text layer and the ladder are in their working state:

- one by one: decide_chunk on one request at a time (the queue carried between calls);
- chunks: decide_chunk on chunks of --chunk requests;
- featurise: HashedNgrams on one prompt at a time and on whole chunks.

Each figure is the median of --repeats runs over the same requests; the targets are issue
13's (20,000 decisions/s one by one, 100,000/s in chunks of 1,024). Prints a markdown table
and writes JSON with --json.

    python -m bench.decision_speed [--requests 20000] [--chunk 1024] [--repeats 5]
        [--json out/decision_speed.json]
"""

from __future__ import annotations

import os

# One core, as the targets are stated: numpy's BLAS must not fan out behind the timer.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from router.features import HashedNgrams, SparseBatch  # noqa: E402
from router.messplus import MessPlusSettings, decide_chunk, draws_for  # noqa: E402
from router.predictor import SatisfactionPredictor  # noqa: E402
from router.synthetic import synthetic_zoo  # noqa: E402

ALPHA = 0.7
TRAINING_REQUESTS = 5_000
TARGET_ONE_BY_ONE = 20_000
TARGET_CHUNKED = 100_000


def _median_rate(run: Callable[[], int], repeats: int) -> float:
    """Items per second of run() (which returns how many it handled), median of repeats."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        handled = run()
        rates.append(handled / (time.perf_counter() - started))
    return statistics.median(rates)


def _decide(
    predictor: SatisfactionPredictor, cost: np.ndarray, chunks: list[SparseBatch]
) -> Callable[[], int]:
    settings = MessPlusSettings()

    def run() -> int:
        rng = np.random.default_rng(0)
        queue, t, decided = settings.initial_queue(), 1, 0
        for x in chunks:
            decisions = decide_chunk(
                settings, ALPHA, t, queue, predictor, cost, x, draws_for(rng, x.n_rows)
            )
            queue, t, decided = decisions[-1].queue, t + x.n_rows, decided + x.n_rows
        return decided

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    if args.requests < 1 or args.chunk < 1 or args.repeats < 1:
        parser.error("--requests, --chunk and --repeats must be positive")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    zoo = synthetic_zoo(TRAINING_REQUESTS + args.requests, seed=0)
    featuriser = HashedNgrams()
    predictor = SatisfactionPredictor(zoo.data.n_models, featuriser)
    training = featuriser.featurise(zoo.data.prompts[:TRAINING_REQUESTS])
    predictor.observe(
        training,
        zoo.data.satisfied[:TRAINING_REQUESTS].astype(np.float64),
        np.ones((TRAINING_REQUESTS, zoo.data.n_models), dtype=bool),
    )
    cost = zoo.data.mean_cost()
    prompts = list(zoo.data.prompts[TRAINING_REQUESTS:])
    x = featuriser.featurise(prompts)
    singles = [x.row(r) for r in range(x.n_rows)]
    chunks = [
        x.rows(np.arange(start, min(start + args.chunk, x.n_rows)))
        for start in range(0, x.n_rows, args.chunk)
    ]
    text_chunks = [
        prompts[start : start + args.chunk] for start in range(0, len(prompts), args.chunk)
    ]

    def featurise_singles() -> int:
        for prompt in prompts:
            featuriser.featurise([prompt])
        return len(prompts)

    def featurise_chunks() -> int:
        for chunk in text_chunks:
            featuriser.featurise(chunk)
        return len(prompts)

    rows = [
        (
            "decide, one by one",
            _median_rate(_decide(predictor, cost, singles), args.repeats),
            TARGET_ONE_BY_ONE,
        ),
        (
            f"decide, chunks of {args.chunk}",
            _median_rate(_decide(predictor, cost, chunks), args.repeats),
            TARGET_CHUNKED,
        ),
        ("featurise, one by one", _median_rate(featurise_singles, args.repeats), None),
        (f"featurise, chunks of {args.chunk}", _median_rate(featurise_chunks, args.repeats), None),
    ]
    print(
        f"{args.requests} requests of the synthetic zoo, median of {args.repeats} runs, one core\n"
    )
    print("| path | per second | target | met |")
    print("|---|---|---|---|")
    results = []
    for name, rate, target in rows:
        met = "" if target is None else ("yes" if rate >= target else "NO")
        shown = "" if target is None else f"{target:,}"
        print(f"| {name} | {rate:,.0f} | {shown} | {met} |")
        results.append({"path": name, "per_second": rate, "target": target})
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"requests": args.requests, "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
