"""`messplus demo`: the whole pipeline on the embedded default, in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from workers.cli import CliError

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run a batch through the whole pipeline, embedded (SQLite, in-process broker, "
        "local CPU Triton)",
        description="Start the local Triton zoo, submit a batch of prompts for one tenant, "
        "route them with MESS+, answer them on Triton, let a simulated user rate every "
        "answer, print a summary, and clean up. Needs no Postgres, Redis or GPU.",
    )
    demo.add_argument("--prompts", type=int, default=300, help="batch size (default 300)")
    demo.add_argument("--alpha", type=float, default=0.6, help="the SLA (default 0.6)")
    demo.add_argument("--data", type=Path, metavar="CSV", help="labelled zoo to replay")
    demo.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="also write `messplus report` of the batch to DIR (index.html and PNGs)",
    )
    demo.set_defaults(func=_demo, uses=frozenset())


def _demo(args: argparse.Namespace) -> int:
    from router.dataset import DatasetError
    from router.sla import validate_alpha
    from workers.cli.report import report_dir_errors
    from workers.demo import run_demo
    from workers.report import prepare_directory

    try:
        validate_alpha(args.alpha)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    if args.prompts < 1:
        raise CliError("--prompts must be >= 1")
    if args.report is not None:  # checked now rather than after a minute of demo
        with report_dir_errors(args.report):
            prepare_directory(args.report)
    try:
        result = run_demo(args.prompts, args.alpha, args.data, report_dir=args.report)
    except DatasetError as exc:
        raise CliError(str(exc)) from None
    met = "met" if result.satisfaction >= result.alpha else "MISSED"
    print(f"\n{result.done} done, {result.failed} failed in {result.seconds:.1f} s")
    print(
        f"satisfaction {result.satisfaction:.3f} over {result.rated} rated answers "
        f"vs SLA alpha {result.alpha} ({met})"
    )
    print(
        f"cost {result.cost:,.0f} {result.cost_unit} vs {result.biggest_model_cost:,.0f} "
        f"{result.cost_unit} for always the most capable model "
        f"({result.cost / result.biggest_model_cost:.0%}); {result.explored} explored"
    )
    print(
        f"  the cheapest fixed mix of models meeting alpha, had every model's accuracy on "
        f"this batch been known in advance, would cost {result.mix_cost:,.0f} "
        f"{result.cost_unit} ({result.cost / result.mix_cost:.2f}x)"
    )
    total = sum(result.served_by.values()) or 1
    shares = ", ".join(f"{m} {n / total:.0%}" for m, n in sorted(result.served_by.items()))
    print(f"served by: {shares}")
    return 0
