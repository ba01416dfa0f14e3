"""`messplus replay`: run routing policies over a labelled data set and compare them.

Requests arrive in a seeded random order, satisfaction comes from the labels and cost from
the energy columns; exploring charges every model. Without --json a progress bar runs on
stderr and a table is printed; with --json stdout is exactly one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from workers.cli import CliError

if TYPE_CHECKING:
    from router.replay import PolicySummary

__all__ = ["register"]

DEFAULT_POLICIES = ("messplus", "paper", "random", "threshold", "mix", "stratified", "oracle")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    replay = subparsers.add_parser(
        "replay",
        help="replay routing policies over a labelled data set",
        description="Replay policies over a labelled CSV (doc_id, input_text, benchmark_name, "
        "then label_/energy_consumption_/inference_time_<model> per model, cheapest first). "
        "Default policies: " + ", ".join(DEFAULT_POLICIES) + " and single:<model> for each "
        "model. --V, --c and --headroom tune `messplus`; `paper` keeps the authors' settings. "
        "`mix`, `stratified` (one mixture per benchmark_name) and `oracle` are offline "
        "references that know every label; the routers never read benchmark_name.",
    )
    replay.add_argument("data", type=Path, metavar="DATA.csv")
    replay.add_argument("--alpha", type=float, required=True, help="SLA target in (0, 1)")
    replay.add_argument("--V", dest="v", type=float, help="unit-free cost weight of messplus")
    replay.add_argument("--c", type=float, help="exploration constant of messplus")
    replay.add_argument("--headroom", type=float, help="answers ahead of alpha messplus aims for")
    replay.add_argument("--seeds", default="0,1,2", help="comma-separated (default %(default)s)")
    replay.add_argument(
        "--feedback-share",
        type=float,
        default=1.0,
        help="share of requests whose answers get rated (default 1; the paper's sparse "
        "setting is 0.2); the SLA is judged on every request",
    )
    replay.add_argument(
        "--rating-batch",
        type=int,
        default=0,
        metavar="N",
        help="requests arrive in batches of N and are rated only after their whole batch is "
        "routed (the first batch routes before any rating: a cold start); default 0 rates "
        "each answer right away",
    )
    replay.add_argument("--policy", action="append", metavar="P", help="policy to run (repeatable)")
    replay.add_argument("--json", action="store_true", help="print one JSON object only")
    replay.add_argument("--plot", type=Path, metavar="FILE.png", help="draw the runs")
    replay.set_defaults(func=_replay, uses=frozenset())


def _seeds(raw: str) -> list[int]:
    try:
        seeds = [int(part) for part in raw.split(",") if part.strip()]
    except ValueError:
        raise CliError(f"--seeds must be comma-separated integers, got {raw!r}") from None
    if not seeds:
        raise CliError("--seeds names no seed")
    return seeds


def _replay(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from router.dataset import DatasetError, load_csv
    from router.features import HashedNgrams
    from router.messplus import MessPlusSettings
    from router.policies import PolicyContext, make_policy
    from router.replay import replay, summarise
    from router.sla import validate_alpha
    from workers.progress import progress_bar

    try:
        alpha = validate_alpha(args.alpha)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    seeds = _seeds(args.seeds)
    if not 0.0 < args.feedback_share <= 1.0:
        raise CliError(f"--feedback-share must be in (0, 1], got {args.feedback_share}")
    if args.rating_batch < 0:
        raise CliError(f"--rating-batch must be >= 0, got {args.rating_batch}")
    try:
        data = load_csv(args.data)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    policies = args.policy or [*DEFAULT_POLICIES, *(f"single:{m}" for m in data.models)]
    overrides = {
        k: v
        for k, v in (("v", args.v), ("c", args.c), ("headroom", args.headroom))
        if v is not None
    }
    try:
        settings = replace(MessPlusSettings(), **overrides)
        context = PolicyContext(data.n_models, alpha, settings, data=data)
        for name in policies:
            make_policy(name, context, data.models)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    features = HashedNgrams().featurise(data.prompts)
    total = len(policies) * len(seeds) * data.n_requests
    traces = {}
    with progress_bar(total, "replay", "req", disable=args.json, leave=False) as bar:
        for name in policies:
            traces[name] = [
                replay(
                    data,
                    name,
                    alpha,
                    seed,
                    settings=settings,
                    feedback_share=args.feedback_share,
                    rating_batch=args.rating_batch,
                    features=features,
                    on_request=bar.update,
                )
                for seed in seeds
            ]
    summaries = {name: summarise(runs, data.models, alpha) for name, runs in traces.items()}
    if args.plot is not None:
        from workers.replay_plot import plot_replay

        plot_replay(traces, data, alpha, args.plot)
    if args.json:
        document = {
            "data": str(args.data),
            "requests": data.n_requests,
            "alpha": alpha,
            "cost_unit": data.cost_unit,
            "policies": {name: s.as_json() for name, s in summaries.items()},
        }
        json.dump(document, sys.stdout)
        sys.stdout.write("\n")
        return 0
    _print_table(summaries, data.cost_unit, alpha, data.n_requests, seeds)
    if args.plot is not None:
        print(f"plot written to {args.plot}")
    return 0


def _print_table(
    summaries: dict[str, PolicySummary], cost_unit: str, alpha: float, n: int, seeds: list[int]
) -> None:
    references = [name for name in ("mix", "stratified") if name in summaries]
    print(f"{n} requests, alpha {alpha}, seeds {','.join(map(str, seeds))}, cost in {cost_unit}")
    header = f"{'policy':<28} {'satisfaction':>12} {'worst seed':>10} {'cost':>14} "
    header += "".join(f"{'vs ' + name[:5]:>10}" for name in references)
    header += f" {'explored':>9}  SLA"
    print(header)
    for name, s in summaries.items():
        ratios = "".join(_ratio(s.cost, summaries[ref].cost) for ref in references)
        print(
            f"{name:<28} {s.satisfaction:12.4f} {s.satisfaction_min:10.4f} {s.cost:14.4g}"
            f"{ratios} {s.explored:9.1f}  {'met' if s.sla_met else 'MISSED'}"
        )


def _ratio(cost: float, reference: float) -> str:
    return f"{cost / reference:10.2f}" if reference > 0 else f"{'-':>10}"
