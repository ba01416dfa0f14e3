"""`messplus` on a provider's mixed traffic: labelled sets of one zoo interleaved into one
seeded stream (or, with --synthetic N, N requests of router.synthetic.synthetic_traffic: eight
kinds, two models priced in dollars per token), against the references that know every label.

mix is the cheapest single fixed mixture, stratified the cheapest fixed mixture per kind of
request (the CSV's benchmark_name, which the router never reads), oracle the cheapest
per-request assignment. For each alpha and share of rating users it prints messplus's mean
and worst-seed satisfaction, whether the SLA holds (mean >= alpha, worst seed >= alpha - 0.01
with full feedback, - 0.02 with sparse) and its cost against each reference measured with
full feedback, plus the wall time of the messplus replays.

    python -m bench.mixed_stream [FOLDER] [--alphas 0.65,0.7,0.75] [--shares 1,0.2]
        [--seeds 0,1,2] [--stream-seed 0] [--synthetic N] [--json out/mixed_stream.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from bench.replay_table import DEFAULT_FOLDER
from bench.sparse_feedback import floats, replay_seeds
from router.dataset import interleave, load_csv
from router.features import HashedNgrams
from router.synthetic import synthetic_traffic

REFERENCES = ("mix", "stratified", "oracle")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_FOLDER)
    parser.add_argument("--alphas", type=floats, default=[0.65, 0.70, 0.75])
    parser.add_argument("--shares", type=floats, default=[1.0, 0.2])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--stream-seed", type=int, default=0, help="seed of the interleaving")
    parser.add_argument("--synthetic", type=int, metavar="N", help="generated traffic instead")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.synthetic is not None:
        data = synthetic_traffic(args.synthetic, args.stream_seed).data
        sets = sorted(set(data.groups))
    else:
        paths = sorted(args.folder.glob("*.csv"))
        if len(paths) < 2:
            print(
                f"mixed_stream: need two or more CSVs of one zoo in {args.folder}", file=sys.stderr
            )
            return 2
        data = interleave([load_csv(path) for path in paths], args.stream_seed)
        sets = [path.stem for path in paths]
    features = HashedNgrams().featurise(data.prompts)
    runs = len(args.alphas) * len(seeds) * (len(REFERENCES) + len(args.shares))
    lines = [
        f"{data.n_requests} requests from {', '.join(sets)}; "
        f"seeds {args.seeds}; cost in {data.cost_unit}",
        "",
        "| alpha | feedback | satisfaction | worst seed | SLA | vs stratified | vs mix "
        "| vs oracle | replay s/seed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    results = []
    with tqdm(total=runs, desc="replays", unit="run", file=sys.stderr) as bar:
        for alpha in args.alphas:
            reference = {
                name: float(replay_seeds(data, alpha, features, seeds, bar, name)[0].mean())
                for name in REFERENCES
            }
            for share in args.shares:
                started = time.perf_counter()
                cost, satisfaction = replay_seeds(
                    data, alpha, features, seeds, bar, "messplus", feedback_share=share
                )
                seconds_per_seed = (time.perf_counter() - started) / len(seeds)
                tolerance = 0.01 if share >= 1.0 else 0.02
                row = {
                    "alpha": alpha,
                    "feedback_share": share,
                    "satisfaction": float(satisfaction.mean()),
                    "satisfaction_min": float(satisfaction.min()),
                    "sla_met": bool(
                        satisfaction.mean() >= alpha and satisfaction.min() >= alpha - tolerance
                    ),
                    "cost": float(cost.mean()),
                    **{
                        f"cost_vs_{name}": float(cost.mean()) / reference[name]
                        for name in REFERENCES
                    },
                    "replay_seconds_per_seed": seconds_per_seed,
                }
                results.append(row)
                lines.append(
                    f"| {alpha} | {share:.0%} | {row['satisfaction']:.4f} "
                    f"| {row['satisfaction_min']:.4f} | {'met' if row['sla_met'] else 'MISSED'} "
                    f"| {row['cost_vs_stratified']:.2f} | {row['cost_vs_mix']:.2f} "
                    f"| {row['cost_vs_oracle']:.2f} | {seconds_per_seed:.1f} |"
                )
    print("\n".join(lines))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "requests": data.n_requests,
            "sets": sets,
            "seeds": seeds,
            "stream_seed": args.stream_seed,
            "rows": results,
        }
        args.json.write_text(json.dumps(document, indent=2))
        print(f"\nJSON written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
