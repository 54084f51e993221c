"""What an ablation study writes: its JSON payload and its markdown table, per output.

Two outputs, one per catalogue (bench/ablation_grids.py):

* "report" (`--config`): ``ablation_<tag>.json`` and ``.md`` in --out, one study each:
  per row its test scores, reference − row paired by seed, the same on validation (the
  rule for changing a default), the paper's published row where there is one, and the
  grid's rule when it was written before the runs;
* "docs" (`--flavour`, the earlier proxy study): ``docs/results_<flavour>.json``, which
  keeps the runs of earlier commands, and its table in docs/results.md.

Every number comes from `ablation_stats` over the runs. The machine note of every payload
is measured (`machine`): CPU model, cores, load average at the start and at the end.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ablation_grids import (  # noqa: E402
    CONDITIONS,
    PROXY,
    PUBLISHED,
    SHIPPED,
    Grid,
)
from ablation_stats import (  # noqa: E402
    SCALE,
    compare,
    mean_sd_cell,
    paired_differences,
    prediction_outcome,
    published_comparison,
    summarise,
    validation_pick,
    verdict_cells,
)
from machine import describe, usable_cpus  # noqa: E402  (bench/machine.py)
from machine import load_average as load_average  # noqa: E402  (ablation_runner reads it here)

from avloc_jax.benchmark import stats  # noqa: E402
from avloc_jax.common import io  # noqa: E402  (atomic writes; imports nothing heavy)


# ------------------------------------------------------------------------------ machine
def machine(load_at_start: list[float] | None = None) -> dict:
    """What the machine is, measured when the payload is written (`machine.describe`:
    platform, CPU model, cores and usable cores, the load average when the study started
    and now, Python, JAX and its devices). Nothing in it is written by hand."""
    return describe(load_at_start, with_jax=True)


def machine_text(machine: dict) -> str:
    """One sentence on the machine of a report. Reports written before `machine` measured
    it carry a note typed by hand; it is shown as such, not as a measurement."""
    if machine.get("measured"):
        load = machine.get("load_average_start"), machine.get("load_average_end")
        load_text = " → ".join(
            "n/a" if x is None else "/".join(f"{v:.2f}" for v in x) for x in load
        )
        return (
            f"Machine (measured): {machine.get('cpu_model', 'unknown CPU')}, "
            f"{machine.get('cpus')} cores ({machine.get('usable_cpus')} usable), "
            f"{machine.get('platform')}; load average (1/5/15 min) at start → end: {load_text}."
        )
    text = (
        f"Machine as recorded: {machine.get('platform', 'unknown platform')}, "
        f"`os.cpu_count()` = {machine.get('cpus')}; no CPU model or load was measured"
    )
    if machine.get("note"):
        text += f'; the note "{machine["note"]}" was recorded by hand before this fix'
    return text + "."


def run_environment() -> dict:
    """How the training process was placed: the cores it may use and the XLA flags (runs
    pinned to one core with a single-threaded XLA take about 1.7x as long as unpinned
    ones on this 2-core machine, and two of them run side by side)."""
    return {"usable_cpus": usable_cpus(), "xla_flags": os.environ.get("XLA_FLAGS", "")}


# ------------------------------------------------------------------------ proxy output
def proxy_markdown(
    payload: dict, delta: float = stats.DEFAULT_DELTA, *, strict: bool = False
) -> str:
    """The proxy study's table of one flavour (docs/results_<flavour>.json), recomputed
    from the per-run scores in `payload["runs"]`: each row's mean ± sample std over seeds,
    and reference − row paired by seed with its 95 % t interval, p, bootstrap interval and
    verdict (the reference is the full model trained as long as the row). While a study
    runs, a row is paired on the seeds it shares with its reference so far; with `strict`
    rows whose seeds differ from the reference's are refused (ValueError)."""
    keys = tuple(payload["keys"])
    k = keys[0]
    runs = payload["runs"]
    summary = summarise(runs, keys)  # never the report's stored (population-std) summary
    lines = [
        f"Flavour `{payload['flavour']}`, test split, ×100; each row: mean ± sample std "
        "(ddof = 1) over its seeds. full − row: paired by seed (the same seed gives the same "
        "initialisation and data order), d̄ ± sample sd, 95 % t interval, p (paired t-test), "
        f"95 % percentile-bootstrap interval; verdict against Δ = {SCALE * delta:.1f} point "
        f'(docs/benchmark.md, "How results are judged"). Rows with fewer than '
        f"{stats.MIN_SEEDS_FOR_CLAIM} seeds carry no claim.",
        f"Last command: `{payload['command']}`. "
        f"Steps per run: {' or '.join(map(str, payload['num_steps']))} "
        "(a row's label gives its steps where they differ); "
        f"benchmark seed {payload['bench_seed']}; {len(runs)} runs, "
        f"{payload['run_minutes']:.1f} min of run time in all (sum over runs). "
        + machine_text(payload.get("machine", {})),
        "",
        f"| variant | n | {' | '.join(keys)} | full − row ({k}, paired) | 95 % CI | p "
        "| bootstrap 95 % CI | verdict |",
        "|---|---|" + "---|" * (len(keys) + 5),
    ]
    for variant, spec in PROXY.variants.items():
        if variant not in summary:
            continue
        row = summary[variant]
        cells = [mean_sd_cell(*row[key]) for key in keys]
        if variant == spec.reference or spec.reference not in summary:
            cells += ["—"] * 5
        else:
            c = compare(runs, spec.reference, variant, k, delta=delta, common_seeds=not strict)
            cells += verdict_cells(c, ("full", "row"))[:5]
        lines.append(f"| {spec.label} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def proxy_payload(flavour: str, keys, results: list[dict], before: dict, common: dict) -> dict:
    """docs/results_<flavour>.json: `before` is that file as it was (its runs are in
    `results` already, but for the rows and seeds run again)."""
    return {
        "flavour": flavour,
        "command": common["command"],
        "machine": common["machine"],
        "bench_seed": common["bench_seed"],
        "num_steps": sorted({int(run["num_steps"]) for run in results}),
        "commands": before.get("commands", []) + [common["command"]],
        "run_minutes": sum(r["seconds"] for r in results) / 60,
        "keys": list(keys),
        "summary": summarise(results, tuple(keys)),
        "runs": results,
    }


def write_docs(docs: Path, flavour: str, payload: dict, delta: float) -> None:
    """docs/results_<flavour>.json, and the flavour's generated block of docs/results.md
    (the markers that bench/evidence_tables.py also writes); the text around it is kept."""
    docs.mkdir(parents=True, exist_ok=True)
    io.atomic_write_json(docs / f"results_{flavour}.json", payload)
    path = docs / "results.md"
    name = f"proxy_{flavour}"
    begin, end = f"<!-- evidence:{name} begin -->", f"<!-- evidence:{name} end -->"
    text = path.read_text() if path.is_file() else "# Results on the semi-synthetic benchmark\n\n"
    block = f"{begin}\n{proxy_markdown(payload, delta)}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## {flavour}\n\n{block}\n"
    io.atomic_write_text(path, text)


def read_docs(docs: Path, flavour: str) -> dict:
    """docs/results_<flavour>.json as it is ({} when there is none)."""
    path = docs / f"results_{flavour}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


# ----------------------------------------------------------------------- report output
def _scaling_text(scaled: dict[str, list[int]]) -> str:
    if not scaled:
        return "nothing scaled: the shipped config as it is"
    return ", ".join(f"`{k}` {a} → {b}" for k, (a, b) in scaled.items())


def report_payload(grid: Grid, config, keys, results: list[dict], common: dict) -> dict:
    """ablation_<tag>.json: the study (`grid`), every run, and the numbers of its table."""
    name = config.data.name
    k = keys[0]
    payload = {
        "config": common["config"],
        "data": common["data_text"],
        "data_dir": common["data_dir"],
        "condition": None if grid.data_dir else grid.condition,
        "condition_params": None if grid.data_dir else CONDITIONS[grid.condition],
        "bench_seed": None if grid.data_dir else grid.bench_seed,
        "seeds": list(grid.seeds),
        "scaled": results[0]["scaled"],
        "command": common["command"],
        "machine": common["machine"],
        "run_minutes": sum(x["seconds"] for x in results) / 60,
        "keys": list(keys),
        "summary": summarise(results, tuple(keys)),
        "delta": grid.delta,
        "paired": paired_differences(results, k, delta=grid.delta),
        "validation_pick": validation_pick(results, k, delta=grid.delta),
        "tolerance": grid.tolerance,
        "runs": results,
    }
    published = PUBLISHED.get(name) if grid.data_dir else None
    if published:
        payload["published"] = published
        payload["published_comparison"] = published_comparison(results, published, grid.tolerance)
    elif grid.data_dir:
        payload["published_note"] = f"METHOD_NOTES §7 has no published row for `{name}`."
    else:
        payload["published_note"] = (
            "Benchmark features are synthetic: no comparison with published figures."
        )
    if grid.name or grid.rule:
        rule = grid.rule
        payload["grid"] = {
            "name": grid.name,
            "rule": rule
            and {"written": rule.written, "predictions": [*map(list, rule.predictions)]},
        }
    return payload


def _rule_lines(payload: dict, k: str, delta: float, strict: bool) -> list[str]:
    """The predictions written before the runs, each with its outcome."""
    rule = (payload.get("grid") or {}).get("rule")
    if not rule:
        return []
    lines = ["", f"Stated before the runs ({rule['written']}):"]
    for a, b in rule["predictions"]:
        c = compare(payload["runs"], a, b, k, delta=delta, common_seeds=not strict)
        lines.append(
            f"* `{a}` − `{b}` predicted supported ({a} ahead): "
            f"{prediction_outcome(c)}; {stats.verdict_label(c, a, b)}."
        )
    return lines


def shipped_markdown(
    payload: dict, delta: float = stats.DEFAULT_DELTA, *, strict: bool = False
) -> str:
    """A report's table, recomputed from the per-run scores in `payload["runs"]` (never
    from its stored summary or paired numbers, which older reports computed with other
    conventions): per row its test scores (mean ± sample std), full − row paired by seed
    with interval, p and verdict, and on validation row − full with its verdict (the rule
    for changing a default). A report written while the study runs pairs each row on the
    seeds it has so far (n says how many); with `strict`, rows whose seeds differ from
    full's are refused (ValueError)."""
    keys = tuple(payload["keys"])
    k = keys[0]
    runs = payload["runs"]
    summary = summarise(runs, keys)
    val_summary = summarise(runs, (k,), split="val")
    first_run: dict[str, dict] = {}
    for r in runs:
        first_run.setdefault(r["variant"], r)
    lines = [
        f"Config `{payload['config']}` on {payload['data']}; test split, ×100; each row: "
        f"mean ± sample std (ddof = 1) over seeds {payload['seeds']}. Scaled: "
        f"{_scaling_text(payload['scaled'])} (every row; nothing else differs from the "
        "shipped config but the row's overrides).",
        f"full − row on {k}: paired by seed (same initialisation of the shared parameters, "
        "same data order); d̄ ± sample sd, 95 % t interval, p (paired t-test), 95 % "
        f"percentile-bootstrap interval, verdict against Δ = {SCALE * delta:.1f} point "
        '(docs/benchmark.md, "How results are judged"; seeds for 80 % power where '
        f"inconclusive; no claim under {stats.MIN_SEEDS_FOR_CLAIM} seeds). On validation: "
        "row − full, paired, with the same verdict (the rule for changing a default).",
        f"Last command: `{payload['command']}`; {payload['run_minutes']:.1f} min of run "
        "time. " + machine_text(payload.get("machine", {})),
        "",
        f"| row | overrides | n | {' | '.join(keys)} | full − row ({k}) | 95 % CI | p "
        f"| bootstrap 95 % CI | verdict | seeds for 80 % power | val {k} "
        "| row − full on val | val 95 % CI | val verdict |",
        "|---|---|---|" + "---|" * (len(keys) + 10),
    ]
    for variant, row in summary.items():
        cells = [mean_sd_cell(*row[key]) for key in keys]
        val_cell = mean_sd_cell(*val_summary[variant][k])
        if variant == "full":
            cells += ["—"] * 6 + [val_cell] + ["—"] * 3
        else:
            c = compare(runs, "full", variant, k, delta=delta, common_seeds=not strict)
            v = compare(runs, variant, "full", k, split="val", delta=delta, common_seeds=not strict)
            val_cells = verdict_cells(v, ("row", "full"))
            cells += [*verdict_cells(c, ("full", "row")), val_cell, *val_cells[:2], val_cells[4]]
        overrides = first_run[variant].get("overrides", {})
        text = ", ".join(f"{a}={b}" for a, b in overrides.items()) or "—"
        twin = first_run[variant].get("same_config_as")
        if twin:
            text += f" (= `{twin}`'s config: its runs)"
        spec = SHIPPED.variants.get(variant)
        label = spec.label if spec else variant
        lines.append(f"| {label} | {text} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    pick = validation_pick(runs, k, delta=delta)
    moves = pick["moves_default_to"]
    lines += [
        "",
        f"On validation the best mean is `{pick['best']}` "
        f"({SCALE * pick['val_means'][pick['best']]:.1f} val {k}). "
        + (
            f"Under the rule the default would move to `{moves[0]}` (its paired val lead "
            "over full is supported)."
            if moves
            else "No row's paired val lead over full is supported: the default stays."
        ),
    ]
    lines += _rule_lines(payload, k, delta, strict)
    published = payload.get("published")
    if published:
        cells = []
        for key in keys:
            item = payload["published_comparison"].get(key)
            if item is None:
                cells.append("–")
            else:
                mark = " **≠**" if item["differs"] else ""
                cells.append(f"{SCALE * item['published']:.1f}{mark}")
        lines += [
            "",
            f"| Published: {published['source']} | " + " | ".join(cells) + " |",
            "|---|" + "---|" * len(keys),
            "",
            "**≠**: the full row differs from the published one: the 95 % t interval of "
            "(full − published) lies entirely on one side of 0 and not inside "
            f"±{SCALE * payload['tolerance']:.1f} point.",
        ]
    elif payload.get("published_note"):
        lines += ["", payload["published_note"]]
    return "\n".join(lines)


def write_report(out: Path, tag: str, payload: dict, delta: float) -> Path:
    """ablation_<tag>.json and .md in `out` (each written to a temporary file, renamed)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ablation_{tag}.json"
    io.atomic_write_json(path, payload)
    io.atomic_write_text(path.with_suffix(".md"), shipped_markdown(payload, delta) + "\n")
    return path
