"""Print issue 5's bad-input table as markdown: tests/faults/test_bad_inputs.py's CASES, each
tried on a fresh deployment, with what it got.

    python -m tests.faults.bad_inputs_table [--json FILE]

Needs what the test needs (Postgres and Redis on this machine); takes a few minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from tests.faults.test_bad_inputs import (
    CASES,
    Case,
    Command,
    Observed,
    bad_input_deployment,
    matches,
    try_case,
)

INPUT_CHARS = 70


def _cell(text: str, limit: int | None = None) -> str:
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text.replace("|", "\\|").replace("\n", "\\n")


def _input(case: Case) -> str:
    spec = case.input
    if not isinstance(spec, Command):
        text = f"`{_cell(spec.body, INPUT_CHARS)}`"
        if spec.content_type != "application/json":
            text += f" as {spec.content_type}"
        if spec.raw:
            text += f", task header `{spec.task}`" if spec.task else ", no task header"
            if spec.headers != "{}":
                text += f", headers changed `{_cell(spec.headers, INPUT_CHARS)}`"
        return text
    shown = " ".join(f"MESSPLUS_{k}={v}" for k, v in spec.env)
    shown += f" messplus {spec.args}" if shown else f"messplus {spec.args}"
    text = f"`{_cell(shown, INPUT_CHARS)}`"
    if spec.stdout != "pipe":
        text += {"gone": ", stdout's reader gone", "closed": ", stdout closed"}[spec.stdout]
    if spec.file is not None:
        content = spec.file if isinstance(spec.file, str) else repr(spec.file)
        text += f", file `{_cell(content, INPUT_CHARS)}`"
    return text


def _expected(case: Case) -> str:
    outcome = case.expected
    name = type(outcome).__name__
    says = getattr(outcome, "says", None)
    return name if says is None else f"{name}: {_cell(says)}"


def markdown(rows: list[tuple[Case, Observed]]) -> str:
    lines = [
        "| # | kind | channel | input | expected | got | as expected | kept consuming |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, (case, observed) in enumerate(rows, start=1):
        lines.append(
            f"| {number} | {_cell(case.kind)} | {_cell(case.channel)} | {_input(case)} "
            f"| {_expected(case)} | {_cell(observed.got, 160)} "
            f"| {'yes' if matches(case.expected, observed) else 'NO'} | {_cell(observed.proof)} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write every case and outcome here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work_dir, bad_input_deployment(Path(work_dir)) as d:
        rows = [(case, try_case(d, case)) for case in CASES]
    print(markdown(rows))
    if args.json is not None:
        records = [
            {"kind": c.kind, "channel": c.channel, "expected": _expected(c), **asdict(o)}
            for c, o in rows
        ]
        args.json.write_text(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
