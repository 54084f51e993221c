"""Adds the runs of a later report (more seeds) to an ablation report of the same study.

  python bench/extend_report.py REPORT.json MORE.json [--variants gate0]

Both are `bench/ablations.py --config` reports. They must describe the same study: the
same config, data or condition, benchmark seed, scaled budget, score keys and Δ; a
(variant, seed) present in both is refused. REPORT is rewritten (temp file, then rename)
with every run, the union of seeds, the summary, paired differences and validation pick
recomputed from the runs, and an `extensions` entry saying what was added, by which
command, on which machine. Rows compare with full on the seeds both have
(`ablation_stats.paired_differences`), so a row that was not extended keeps its n.
`--variants` takes only those rows' runs from MORE (a report whose full row merely reused
runs that another report already adds).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation_report import shipped_markdown  # noqa: E402
from ablation_stats import paired_differences, summarise, validation_pick  # noqa: E402

from avloc_jax.benchmark import stats  # noqa: E402
from avloc_jax.common import io  # noqa: E402

SAME_STUDY = ("config", "condition", "condition_params", "bench_seed", "scaled", "keys")


def extend(base: dict, more: dict, variants: list[str] | None = None) -> dict:
    """The report `base` with the runs of `more` added (see the module docstring); with
    `variants`, only those rows' runs."""
    if variants is not None:
        unknown = sorted(set(variants) - {r["variant"] for r in more["runs"]})
        if unknown:
            raise ValueError(f"no runs of {unknown} in the report to add")
        more = {**more, "runs": [r for r in more["runs"] if r["variant"] in variants]}
    # Reports from before Δ was recorded used the default.
    defaults = {"delta": stats.DEFAULT_DELTA}
    for key in (*SAME_STUDY, "delta"):
        mine, theirs = base.get(key, defaults.get(key)), more.get(key, defaults.get(key))
        if mine != theirs:
            raise ValueError(
                f"not the same study: {key} is {mine!r} in the report and {theirs!r} in the "
                "one to add"
            )
    have = {(r["variant"], r["seed"]) for r in base["runs"]}
    clash = sorted(k for k in ((r["variant"], r["seed"]) for r in more["runs"]) if k in have)
    if clash:
        raise ValueError(f"runs already in the report: {clash}")
    runs = base["runs"] + more["runs"]
    keys = tuple(base["keys"])
    delta = base.get("delta", stats.DEFAULT_DELTA)
    added = {
        "command": more["command"],
        "machine": more["machine"],
        "run_minutes": sum(r.get("seconds", 0.0) for r in more["runs"]) / 60,
        "variants": sorted({r["variant"] for r in more["runs"]}),
        "seeds": sorted({r["seed"] for r in more["runs"]}),
    }
    return {
        **base,
        "seeds": sorted({r["seed"] for r in runs}),
        "run_minutes": base["run_minutes"] + sum(r.get("seconds", 0.0) for r in more["runs"]) / 60,
        "summary": summarise(runs, keys),
        "paired": paired_differences(runs, keys[0], delta=delta),
        "validation_pick": validation_pick(runs, keys[0], delta=delta),
        "runs": runs,
        "extensions": [*base.get("extensions", []), added],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("report", help="the ablation_*.json to extend (rewritten in place)")
    p.add_argument("more", help="a report of the same study with the runs to add")
    p.add_argument("--variants", help="comma-separated rows to take from MORE (default: all)")
    args = p.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",")] if args.variants else None
    try:
        base = json.loads(Path(args.report).read_text())
        more = json.loads(Path(args.more).read_text())
        merged = extend(base, more, variants)
    except (OSError, json.JSONDecodeError, KeyError, ValueError) as e:
        print(f"extend_report: error: {e}", file=sys.stderr)
        return 2
    report = Path(args.report)
    delta = merged.get("delta", stats.DEFAULT_DELTA)
    io.atomic_write_json(report, merged)
    io.atomic_write_text(report.with_suffix(".md"), shipped_markdown(merged, delta) + "\n")
    added = len(merged["runs"]) - len(base["runs"])
    print(f"extend_report: {report}: added {added} runs; seeds {merged['seeds']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
