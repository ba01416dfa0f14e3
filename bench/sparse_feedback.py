"""Replay `messplus` with feedback from only a share of users, against full feedback.

The paper's sparse setting: a seeded coin per request decides whether its user ever rates;
the router learns and keeps its SLA estimate from those ratings alone, while satisfaction
is judged on every user. For each benchmark, share of raters and `sla_confidence` it
prints the mean and worst satisfaction over seeds, how many seeds end within 0.01 of
alpha, and the cost against the fixed mixture (`mix`) and against full feedback.

    python -m bench.sparse_feedback [FOLDER] [--shares 1,0.2] [--confidence 0,0.75]
        [--seeds 0,...,9] [--json out/sparse_feedback.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from bench.replay_table import DEFAULT_FOLDER, PAPER_ALPHA
from router.dataset import ZooData, load_csv
from router.features import HashedNgrams, SparseBatch
from router.messplus import MessPlusSettings
from router.replay import replay

TOLERANCE = 0.01


def floats(text: str) -> list[float]:
    return [float(part) for part in text.split(",")]


def replay_seeds(
    data: ZooData,
    alpha: float,
    features: SparseBatch,
    seeds: list[int],
    bar: tqdm,  # type: ignore[type-arg]
    policy: str,
    settings: MessPlusSettings | None = None,
    feedback_share: float = 1.0,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per seed: total cost and satisfaction."""
    cost, satisfaction = [], []
    for seed in seeds:
        trace = replay(
            data,
            policy,
            alpha,
            seed,
            settings=settings,
            feedback_share=feedback_share,
            features=features,
        )
        cost.append(trace.cost.sum())
        satisfaction.append(trace.satisfaction)
        bar.update()
    return np.array(cost), np.array(satisfaction)


def _benchmark(
    data: ZooData,
    alpha: float,
    seeds: list[int],
    shares: list[float],
    confidences: list[float],
    bar: tqdm,  # type: ignore[type-arg]
) -> tuple[float, list[dict[str, float]]]:
    """The mixture's mean cost, and one row per (confidence, share)."""
    features = HashedNgrams().featurise(data.prompts)
    mix_cost = float(replay_seeds(data, alpha, features, seeds, bar, "mix")[0].mean())
    rows = []
    for confidence in confidences:
        settings = replace(MessPlusSettings(), sla_confidence=confidence)
        by_share = {
            share: replay_seeds(data, alpha, features, seeds, bar, "messplus", settings, share)
            for share in shares
        }
        full_cost = float(by_share[1.0][0].mean()) if 1.0 in by_share else float("nan")
        for share, (cost, satisfaction) in by_share.items():
            rows.append(
                {
                    "feedback_share": share,
                    "sla_confidence": confidence,
                    "satisfaction": float(satisfaction.mean()),
                    "satisfaction_min": float(satisfaction.min()),
                    "seeds_within_tolerance": int(np.sum(satisfaction >= alpha - TOLERANCE)),
                    "cost": float(cost.mean()),
                    "cost_vs_mix": float(cost.mean()) / mix_cost,
                    "cost_vs_full": float(cost.mean()) / full_cost,
                }
            )
    return mix_cost, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--shares", type=floats, default=[1.0, 0.2])
    parser.add_argument("--confidence", type=floats, default=[MessPlusSettings().sla_confidence])
    parser.add_argument("--seeds", default=",".join(str(s) for s in range(10)))
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    paths = [p for p in sorted(args.folder.glob("*.csv")) if p.stem in PAPER_ALPHA]
    if not paths:
        print(f"sparse_feedback: no benchmark with a paper alpha in {args.folder}", file=sys.stderr)
        return 2
    runs = len(paths) * len(seeds) * (1 + len(args.shares) * len(args.confidence))
    benchmarks: dict[str, object] = {}
    lines = [
        "| benchmark | alpha | feedback | sla_confidence | satisfaction | worst seed "
        "| seeds within 0.01 | cost vs mix | cost vs full feedback |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    with tqdm(total=runs, desc="replays", unit="run", file=sys.stderr) as bar:
        for path in paths:
            alpha = PAPER_ALPHA[path.stem]
            mix_cost, rows = _benchmark(
                load_csv(path), alpha, seeds, args.shares, args.confidence, bar
            )
            benchmarks[path.stem] = {"alpha": alpha, "mix_cost": mix_cost, "rows": rows}
            lines += [
                f"| {path.stem} | {alpha} | {row['feedback_share']:.0%} "
                f"| {row['sla_confidence']} | {row['satisfaction']:.4f} "
                f"| {row['satisfaction_min']:.4f} "
                f"| {row['seeds_within_tolerance']}/{len(seeds)} "
                f"| {row['cost_vs_mix']:.2f} | {row['cost_vs_full']:.2f} |"
                for row in rows
            ]
    print("\n".join(lines))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        results = {"seeds": seeds, "tolerance": TOLERANCE, "benchmarks": benchmarks}
        args.json.write_text(json.dumps(results, indent=2))
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
