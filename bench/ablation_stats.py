"""The one path from an ablation study's per-run scores to its numbers and verdicts.

Every table of `bench/ablations.py`, `bench/evidence_tables.py`,
`bench/conditions_table.py` and `bench/extend_report.py` is computed here from the runs
(``{"variant", "seed", "test": {key: score}, "val": {...}}``), never from a report's
stored summary: each row's mean ± sample std (ddof = 1) over seeds, and a − b paired by
seed with `avloc_jax.benchmark.stats` (n, d̄, sd, 95 % paired-t interval, p, percentile
bootstrap, the verdict against Δ: supported / ruled out / inconclusive; no claim under
5 seeds), and the cells a table shows for them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avloc_jax.benchmark import stats  # noqa: E402  (numpy and scipy only)

SCALE = 100.0  # scores in [0, 1] are shown ×100


def add_delta_flag(parser: argparse.ArgumentParser) -> None:
    """`--delta`, the minimum effect of interest of every verdict (shared by the bench
    scripts that judge comparisons)."""
    parser.add_argument(
        "--delta",
        type=float,
        default=stats.DEFAULT_DELTA,
        help="The minimum effect of interest Δ of every verdict, on the score's scale "
        f"(default {stats.DEFAULT_DELTA} = 1 point).",
    )


def summarise(results: list[dict], keys: tuple[str, ...], split: str = "test") -> dict[str, dict]:
    """variant -> {seeds, key: [mean, sample std (ddof = 1; None under 2 seeds)]}."""
    table: dict[str, dict] = {}
    for r in results:
        table.setdefault(r["variant"], {"seeds": [], **{k: [] for k in keys}})
        table[r["variant"]]["seeds"].append(r["seed"])
        for k in keys:
            table[r["variant"]][k].append(float(r[split][k]))
    return {
        v: {
            "seeds": row["seeds"],
            **{k: [float(np.mean(row[k])), stats.sample_sd(row[k])] for k in keys},
        }
        for v, row in table.items()
    }


def mean_sd_cell(mean: float, sd: float | None, scale: float = SCALE) -> str:
    """ "77.1 ± 2.1" (sample std), or the mean alone with its n when there is no std."""
    if sd is None:
        return f"{scale * mean:.1f} (n = 1)"
    return f"{scale * mean:.1f} ± {scale * sd:.1f}"


def scores_by_seed(results: list[dict], variant: str, key: str, split: str = "test") -> dict:
    """seed -> the `split` score `key` of one row. Raises ValueError on a repeated seed."""
    out: dict[int, float] = {}
    for r in results:
        if r["variant"] == variant:
            if int(r["seed"]) in out:
                raise ValueError(f"{variant} has seed {r['seed']} twice")
            out[int(r["seed"])] = float(r[split][key])
    return out


def compare(
    results: list[dict],
    first: str,
    second: str,
    key: str,
    *,
    split: str = "test",
    delta: float = stats.DEFAULT_DELTA,
    common_seeds: bool = False,
) -> stats.PairedComparison:
    """first − second on `key`, paired by seed (`avloc_jax.benchmark.stats`). The two rows
    must have the same seeds (ValueError otherwise) unless `common_seeds`, which keeps the
    seeds both have (a study still running, or a row not extended to every seed)."""
    a = scores_by_seed(results, first, key, split)
    b = scores_by_seed(results, second, key, split)
    if common_seeds:
        shared = set(a) & set(b)
        a = {s: x for s, x in a.items() if s in shared}
        b = {s: x for s, x in b.items() if s in shared}
    return stats.paired_comparison(a, b, delta=delta)


def comparison_cells(c: stats.PairedComparison, scale: float = SCALE) -> dict[str, str]:
    """The table cells of a paired comparison, ×`scale`: diff (d̄ ± sd), ci (95 % t), p,
    boot (percentile bootstrap) and power (seeds for 80 % power when inconclusive). The
    verdict cell is `stats.verdict_label`, which names the rows."""
    if c.sd is None:
        mean = "n/a" if c.mean is None else f"{scale * c.mean:+.2f} (n = {c.n})"
        return {"diff": mean, "ci": "—", "p": "—", "boot": "—", "power": "—"}

    def interval(low: float | None, high: float | None) -> str:
        assert low is not None and high is not None
        return f"[{scale * low:+.2f}, {scale * high:+.2f}]"

    p = c.p if c.p is not None else float("nan")
    return {
        "diff": f"{scale * (c.mean or 0.0):+.2f} ± {scale * c.sd:.2f}",
        "ci": interval(c.ci_low, c.ci_high),
        "p": f"{p:.3f}" if p >= 0.001 else "< 0.001",
        "boot": interval(c.boot_low, c.boot_high),
        "power": stats.power_cell(c),
    }


def verdict_cells(
    c: stats.PairedComparison, names: tuple[str, str], scale: float = SCALE
) -> list[str]:
    """The cells `a − b | 95 % CI | p | bootstrap CI | verdict | power` of one paired
    comparison; `names` are the two rows as the verdict names them (e.g. ("full", "row")).
    Every table row of a paired difference is made here."""
    cell = comparison_cells(c, scale)
    return [
        cell["diff"], cell["ci"], cell["p"], cell["boot"],
        stats.verdict_label(c, *names), cell["power"],
    ]  # fmt: skip


def paired_row_cells(
    runs: list[dict],
    a: str,
    b: str,
    key: str,
    *,
    delta: float = stats.DEFAULT_DELTA,
    common_seeds: bool = False,
    scale: float = SCALE,
) -> str:
    """The cells `n | a | b | a − b | 95 % CI | p | bootstrap CI | verdict | power` of one
    paired comparison (the table row of bench/conditions_table.py and
    bench/evidence_tables.py). With `common_seeds` both rows' scores and the pairing use
    the seeds both have (a row not extended to every seed); otherwise mismatched seeds are
    refused (ValueError)."""
    if common_seeds:
        shared = set(scores_by_seed(runs, a, key)) & set(scores_by_seed(runs, b, key))
        runs = [r for r in runs if r["seed"] in shared]
    summary = summarise(runs, (key,))
    c = compare(runs, a, b, key, delta=delta)
    return " | ".join(
        [
            str(c.n),
            mean_sd_cell(summary[a][key][0], summary[a][key][1], scale),
            mean_sd_cell(summary[b][key][0], summary[b][key][1], scale),
            *verdict_cells(c, (a, b), scale),
        ]
    )


def paired_differences(
    results: list[dict],
    key: str,
    reference: str = "full",
    split: str = "test",
    delta: float = stats.DEFAULT_DELTA,
) -> dict:
    """variant -> reference − row on the `split` score `key`, paired by seed
    (`stats.PairedComparison.as_dict()`: seeds, diffs, n, mean, sd, 95 % t interval, p,
    bootstrap interval, verdict), for every row but the reference. Pairs on the seeds both
    rows have (a report is rewritten after every run, before every row has every seed);
    n says how many."""
    variants = [v for v in dict.fromkeys(r["variant"] for r in results) if v != reference]
    return {
        v: compare(
            results, reference, v, key, split=split, delta=delta, common_seeds=True
        ).as_dict()
        for v in variants
    }


def validation_pick(
    results: list[dict], key: str, default: str = "full", delta: float = stats.DEFAULT_DELTA
) -> dict:
    """Defaults are chosen on validation (the held-out split that selects checkpoints;
    the test split plays no part). Returns every row's validation mean and sample std, the
    row with the best mean (`best`), each row's paired validation lead over the current
    default (row − default, `paired_val`), and `moves_default_to`: the rows whose lead is
    supported (its 95 % CI above 0 and not inside ±Δ; docs/benchmark.md), best first."""
    val: dict[str, list[float]] = {}
    for r in results:
        val.setdefault(r["variant"], []).append(float(r["val"][key]))
    means = {v: float(np.mean(xs)) for v, xs in val.items()}
    best = max(means, key=lambda v: means[v])
    paired: dict[str, dict] = {}
    if default in val:
        for v in val:
            if v != default:
                paired[v] = compare(
                    results, v, default, key, split="val", delta=delta, common_seeds=True
                ).as_dict()
    moves = sorted(
        (v for v, d in paired.items() if d["verdict"] == stats.SUPPORTED),
        key=lambda v: -means[v],
    )
    return {
        "key": key,
        "default": default,
        "best": best,
        "val_means": means,
        "val_sd": {v: stats.sample_sd(xs) for v, xs in val.items()},
        "paired_val": paired,
        "moves_default_to": moves,
    }


def published_comparison(results: list[dict], published: dict, tolerance: float) -> dict[str, dict]:
    """metric -> {ours, ours_sd, published, ci_low, ci_high, differs}: the full row's test
    scores against the paper's number. `differs` when the 95 % t interval of the full
    row's mean minus the published value lies entirely above or below 0 and not inside
    ±`tolerance` (the verdict of `stats.interval_verdict`); with one seed, when the one
    score is off by more than `tolerance`."""
    out = {}
    scores = [r["test"] for r in results if r["variant"] == "full"]
    for metric, value in published["metrics"].items():
        xs = [float(t[metric]) for t in scores if metric in t]
        if not xs:
            continue
        mean = float(np.mean(xs))
        low: float | None
        high: float | None
        if len(xs) >= 2:
            low, high, _ = stats.t_interval([x - value for x in xs])
            verdict = stats.interval_verdict(low, high, tolerance)
            differs = verdict in (stats.SUPPORTED, stats.SUPPORTED_OTHER_WAY)
        else:
            low = high = None
            differs = abs(mean - value) > tolerance
        out[metric] = {
            "ours": mean,
            "ours_sd": stats.sample_sd(xs),
            "published": value,
            "ci_low": low,
            "ci_high": high,
            "differs": bool(differs),
        }
    return out


# What a prediction stated before the runs ("a − b: supported, a ahead") comes to, by the
# verdict of the paired comparison (docs/benchmark.md, "How results are judged": an
# inconclusive result refutes nothing).
PREDICTION_OUTCOMES = {
    stats.SUPPORTED: "as predicted",
    stats.RULED_OUT: "refuted (ruled out)",
    stats.SUPPORTED_OTHER_WAY: "refuted (the other row ahead)",
    stats.INCONCLUSIVE: "open (inconclusive)",
    stats.NO_CLAIM: "no claim",
    stats.NOT_AVAILABLE: "no claim",
}


def prediction_outcome(c: stats.PairedComparison) -> str:
    """The outcome of the prediction "a − b supported (a ahead)" given its comparison."""
    return PREDICTION_OUTCOMES[c.verdict]
