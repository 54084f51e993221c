"""One table of paired differences across the reports of `bench/ablations.py --config`.

  python bench/conditions_table.py docs/ablations/ablation_*.json [--rows gate0,concat]

Each report is one (config, data or benchmark condition, step budget) study. This prints a
markdown table with one line per report and compared row: the condition, the budget, the
full model's and the row's test score (mean ± std over seeds), the paired difference
full − row (mean ± sample std, same seeds) and the verdict (a component earns its place
only when the mean exceeds twice the std). It reads the numbers the reports hold and
computes nothing new, so docs/results.md can quote it without retyping figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablations import paired_differences  # noqa: E402  (the reports' own pairing)

SCALE = 100.0


def _budget(payload: dict) -> str:
    scaled = payload.get("scaled") or {}
    steps = scaled.get("train.num_steps", ["shipped", "shipped"])[1]
    batch = scaled.get("train.batch_size", ["shipped", "shipped"])[1]
    return f"{steps} × {batch}"


def _condition(payload: dict) -> str:
    if payload.get("condition") is None:
        return f"real data: {payload['data']}"
    return str(payload["condition"])


def table(payloads: list[dict], rows: list[str] | None = None, reference: str = "full") -> str:
    """The markdown table (see the module docstring); `rows` limits the compared rows;
    `reference` pairs them with another row than full (same seeds, same statistic),
    e.g. full_headnorm against gate0_headnorm."""
    lines = [
        f"| config | condition | steps × batch | row | {reference} | row score "
        f"| {reference} − row (paired) | seeds | earns its place |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for payload in payloads:
        key = payload["keys"][0]
        summary = payload["summary"]
        if reference not in summary:
            continue
        paired = (
            payload["paired"]
            if reference == "full"
            else paired_differences(payload["runs"], key, reference=reference)
        )
        full = summary[reference][key]
        for variant, d in paired.items():
            if variant == reference or (rows and variant not in rows):
                continue
            score = summary[variant][key]
            if d.get("std") is None:
                gap, verdict = "n/a", "n/a (< 2 seeds)"
            else:
                gap = f"{SCALE * d['mean']:+.2f} ± {SCALE * d['std']:.2f}"
                verdict = "yes" if d["earns"] else "no"
            lines.append(
                f"| `{payload['config']}` | {_condition(payload)} | {_budget(payload)} "
                f"| {variant} | {SCALE * full[0]:.1f} ± {SCALE * full[1]:.1f} "
                f"| {SCALE * score[0]:.1f} ± {SCALE * score[1]:.1f} | {gap} "
                f"| {len(d['seeds'])} | {verdict} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("reports", nargs="+", help="ablation_*.json written by bench/ablations.py")
    p.add_argument("--rows", help="Comma list of rows to compare (default: all).")
    p.add_argument(
        "--reference", default="full", help="The row the others are paired with (default full)."
    )
    args = p.parse_args(argv)
    payloads = []
    for path in args.reports:
        try:
            payload = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            print(f"{path}: not a bench/ablations.py report ({err})", file=sys.stderr)
            return 2
        missing = [k for k in ("config", "keys", "summary", "paired", "runs") if k not in payload]
        if missing:
            print(f"{path}: not a bench/ablations.py report (no {missing})", file=sys.stderr)
            return 2
        payloads.append(payload)
    rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
    print(table(payloads, rows, args.reference))
    return 0


if __name__ == "__main__":
    sys.exit(main())
