"""One table of paired comparisons across the reports of `bench/ablations.py --config`.

  python bench/conditions_table.py docs/ablations/ablation_*.json [--rows gate0,concat]

Each report is one (config, data or benchmark condition, step budget) study. This prints a
markdown table with one line per report and compared row: the condition, the budget, n,
the reference's and the row's test score (mean ± sample std over seeds), and reference −
row paired by seed with its 95 % t interval, p, percentile-bootstrap interval, verdict
and, where inconclusive, the seeds a paired t-test would need for 80 % power
(`avloc_jax.benchmark.stats`). Everything is recomputed from the per-run scores in each
report's `runs`; the reports' stored `summary` and `paired` numbers are not used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation_stats import add_delta_flag, paired_row_cells, summarise  # noqa: E402

from avloc_jax.benchmark import stats  # noqa: E402


def _budget(payload: dict) -> str:
    scaled = payload.get("scaled") or {}
    steps = scaled.get("train.num_steps", ["shipped", "shipped"])[1]
    batch = scaled.get("train.batch_size", ["shipped", "shipped"])[1]
    return f"{steps} × {batch}"


def _condition(payload: dict) -> str:
    if payload.get("condition") is None:
        return f"real data: {payload['data']}"
    return str(payload["condition"])


def table(
    payloads: list[dict],
    rows: list[str] | None = None,
    reference: str = "full",
    delta: float = stats.DEFAULT_DELTA,
) -> str:
    """The markdown table (see the module docstring); `rows` limits the compared rows;
    `reference` pairs them with another row than full (same seeds, same statistic),
    e.g. full_headnorm against gate0_headnorm. Rows whose seeds differ from the
    reference's are refused (ValueError)."""
    lines = [
        f"| config | condition | steps × batch | row | n | {reference} | row score "
        f"| {reference} − row (paired) | 95 % CI | p | bootstrap 95 % CI | verdict "
        "| seeds for 80 % power |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for payload in payloads:
        key = payload["keys"][0]
        runs = payload["runs"]
        summary = summarise(runs, (key,))
        if reference not in summary:
            continue
        for variant in summary:
            if variant == reference or (rows and variant not in rows):
                continue
            cells = paired_row_cells(runs, reference, variant, key, delta=delta)
            lines.append(
                f"| `{payload['config']}` | {_condition(payload)} | {_budget(payload)} "
                f"| {variant} | {cells} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", help="ablation_*.json written by bench/ablations.py")
    p.add_argument("--rows", help="Comma list of rows to compare (default: all).")
    p.add_argument(
        "--reference", default="full", help="The row the others are paired with (default full)."
    )
    add_delta_flag(p)
    args = p.parse_args(argv)
    payloads = []
    for path in args.reports:
        try:
            payload = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            print(f"{path}: not a bench/ablations.py report ({err})", file=sys.stderr)
            return 2
        missing = [k for k in ("config", "keys", "runs") if k not in payload]
        if missing:
            print(f"{path}: not a bench/ablations.py report (no {missing})", file=sys.stderr)
            return 2
        payloads.append(payload)
    rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
    try:
        print(table(payloads, rows, args.reference, args.delta))
    except ValueError as err:
        print(f"cannot pair the rows: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
