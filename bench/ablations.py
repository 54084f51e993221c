"""The paper's ablation study on the semi-synthetic benchmark (docs/benchmark.md).

  python bench/ablations.py --flavour activitynet12 [--seeds 0,1,2] \\
      [--variants core|all|a,b,...] [--quick]

Builds the benchmark once (make-benchmark on the real annotations, then the TFDS build),
then trains every variant x seed in-process with `train.train_and_evaluate` (configs
`configs/benchmark_<flavour>.py` plus the variant's overrides). Each finished run stores
its metrics in its workdir and is skipped when the command is run again, so an
interrupted study resumes. After every run it rewrites ``docs/results_<flavour>.json``
(machine, command, per-run metrics) and the flavour's table in ``docs/results.md``
(between ``<!-- table:<flavour> -->`` markers; the text around them is kept).

Shipped-config mode (issue 14): ablate the configs users run, not the benchmark's proxy.

  python bench/ablations.py --config configs/activitynet12.py [--steps N] [--batch-size B] \
      [--variants shipped|paper_table|conditions|a,b,...] [--seeds 0,1,2,3,4] \
      [--condition default|segment_offsets|...] [--data-dir DIR] [--out DIR]

Trains the shipped config (`configs/activitynet12.py`, `ave.py`, `thumos14.py`) as it is,
with only `train.num_steps` and `train.batch_size` scaled (`--steps`, `--batch-size`; the
evaluation and checkpoint intervals scale with the steps, so a run makes as many
evaluations as the shipped one), and every row records the scaling. Without `--data-dir`
it runs on the semi-synthetic benchmark of the config's flavour (`--condition` picks a
pre-registered condition of docs/benchmark.md); with `--data-dir DIR` on a dataset the
user built from the real features (`avloc build-data`). Rows are paired with the full
model by seed (same seed: same initialisation of the shared parameters, same data order):
the table gives full − row per seed, its mean and sample std, the 95 % t interval, p, a
bootstrap interval and the verdict of `avloc_jax.benchmark.stats` (supported / ruled out /
inconclusive against a minimum effect of interest Δ, `--delta`; no claim under 5 seeds).
Writes ``ablation_<tag>.json`` and ``.md`` into `--out`, the second beside the paper's
published row (METHOD_NOTES §7) with the cells that differ marked. The machine note of
every report is measured (CPU model, cores, load average at the start and at the end).
`python bench/evidence_tables.py` regenerates every table in docs/ from the reports.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from avloc_jax.benchmark import stats  # noqa: E402  (numpy and scipy only)
from avloc_jax.common import io  # noqa: E402  (atomic writes; imports nothing heavy)

# name -> (row label, config overrides on configs/benchmark_<flavour>.py). The full model:
# 2 cross-attention stages, dense skip, no merge non-linearity, zero-initialised attention
# gates, attention window ±1, open-max head, every loss (docs/method.md).
VARIANTS: dict[str, tuple[str, dict]] = {
    "full": ("Full model (cross-attention: 2 stages, dense skip, gated, window ±1; open-max)", {}),
    "visual": ("Visual only", {"model.fusion": "visual"}),
    "audio": ("Audio only", {"model.fusion": "audio"}),
    "concat": ("Early concatenation (no cross-attention)", {"model.fusion": "concat"}),
    "stages1": ("1 stage", {"model.num_stages": 1}),
    "stages3": ("3 stages", {"model.num_stages": 3}),
    "stages4": ("4 stages", {"model.num_stages": 4}),
    "skip_residual": ("Residual skip", {"model.skip": "residual"}),
    "skip_none": ("No skip", {"model.skip": "none"}),
    "merge_layernorm": ("LayerNorm merge", {"model.merge": "layernorm"}),
    "merge_tanh": ("tanh merge", {"model.merge": "tanh"}),
    "no_gate": (
        "Ungated attention (gate fixed open, as the paper's equations)",
        {"model.attention_gate": False},
    ),
    "no_gate_layernorm": (
        "Ungated attention + LayerNorm merge (this project's first full model)",
        {"model.attention_gate": False, "model.merge": "layernorm"},
    ),
    "gate_frozen": (
        "Control: gate held at 0 (same streams, scale and head; no attention)",
        {"model.attention_gate_frozen": True},
    ),
    "attn_global": ("Global attention", {"model.attention_window": 0}),
    "attn_window4": ("Attention window ±4", {"model.attention_window": 4}),
    "distance_bias": (
        "Global attention + learned distance bias",
        {"model.attention_window": 0, "model.distance_bias": True},
    ),
    "softmax_bg": ("Closed-set softmax with a background class", {"model.head": "softmax_bg"}),
    "no_fg": ("without L_fg", {"loss.fg_weight": 0.0}),
    "no_rel": ("without L_rel", {"loss.rel_weight": 0.0}),
    "no_cc": ("without class consistency", {"loss.class_consistency_weight": 0.0}),
    "no_rc": ("without reliability consistency", {"loss.reliability_consistency_weight": 0.0}),
    "rule_class_argmax": (
        "class_argmax pseudo-label rule (METHOD_NOTES)",
        {"loss.pseudo_label_rule": "class_argmax"},
    ),
    "rel_bg0": ("L_rel without its bottom-k term", {"loss.rel_background_weight": 0.0}),
    "rel_bg1": (
        "L_rel with a full-weight bottom-k term (METHOD_NOTES)",
        {"loss.rel_background_weight": 1.0},
    ),
    "cas_smooth": (
        "Full + CAS smoothing (5) in post-processing",
        {"localization.cas_smoothing": 5},
    ),
    # Longer training (the 600-step default is sized for the CPU budget; see docs/results.md).
    "full_1k": ("Full model, 1000 steps", {"train.num_steps": 1000}),
    "visual_1k": ("Visual only, 1000 steps", {"model.fusion": "visual", "train.num_steps": 1000}),
    "audio_1k": ("Audio only, 1000 steps", {"model.fusion": "audio", "train.num_steps": 1000}),
    "concat_1k": (
        "Early concatenation, 1000 steps",
        {"model.fusion": "concat", "train.num_steps": 1000},
    ),
}
CORE = (
    "full",
    "visual",
    "audio",
    "concat",
    "softmax_bg",
    "no_fg",
    "no_rel",
    "no_cc",
    "no_rc",
    "no_gate",
    "gate_frozen",
)
LONGER = ("full_1k", "visual_1k", "audio_1k", "concat_1k")
GROUPS = {
    "core": CORE,
    # The paper's ablation grid at the default 600 steps (ActivityNet-style: < 60 min on 2 cores).
    "grid": tuple(v for v in VARIANTS if v not in LONGER),
    # The AVE-style grid that was run: the fusion, gate/merge, attention-range, head and loss
    # rows (CAS smoothing only affects detection; stage and skip rows were not run on AVE).
    "grid_ave": CORE
    + ("no_gate_layernorm", "merge_layernorm", "attn_global", "rule_class_argmax", "rel_bg1"),
    "longer": LONGER,
    "all": tuple(VARIANTS),
}
BASELINES = ("visual", "audio", "concat")

# ----------------------------------------------------------------------------- shipped mode
# name -> (row label, overrides on the shipped config). Rows whose resolved config equals
# another row's (e.g. window4 on configs/activitynet12.py, which ships ±4) are not trained
# twice: they reuse that row's runs and say so.
SHIPPED_VARIANTS: dict[str, tuple[str, dict]] = {
    "full": ("Full model, as shipped", {}),
    "gate0": (
        "Gate held at 0 (same streams, scale and head; no attention)",
        {"model.attention_gate_frozen": True},
    ),
    "concat": ("Early concatenation", {"model.fusion": "concat"}),
    "visual": ("Visual only", {"model.fusion": "visual"}),
    "audio": ("Audio only", {"model.fusion": "audio"}),
    "window1": ("Attention window ±1", {"model.attention_window": 1}),
    "window4": ("Attention window ±4", {"model.attention_window": 4}),
    "window8": ("Attention window ±8", {"model.attention_window": 8}),
    "window0": ("Global attention", {"model.attention_window": 0}),
    "embed64": ("Embedding d = 64", {"model.embed_dim": 64}),
    "embed256": ("Embedding d = 256", {"model.embed_dim": 256}),
    "stages1": ("1 stage", {"model.num_stages": 1}),
    "stages2": ("2 stages", {"model.num_stages": 2}),
    "stages3": ("3 stages", {"model.num_stages": 3}),
    "paper": (
        "METHOD_NOTES as written (configs/paper.py: ungated, LayerNorm merge, "
        "class_argmax, full bottom-k L_rel)",
        {},  # filled from configs/paper.py below
    ),
    "softmax_bg": ("Closed-set softmax with a background class", {"model.head": "softmax_bg"}),
    # The scale confound removed: the same LayerNorm in front of the head for every fusion.
    "full_headnorm": ("Full model + head LayerNorm", {"model.head_norm": "layernorm"}),
    "gate0_headnorm": (
        "Gate held at 0 + head LayerNorm",
        {"model.attention_gate_frozen": True, "model.head_norm": "layernorm"},
    ),
    "concat_headnorm": (
        "Early concatenation + head LayerNorm",
        {"model.fusion": "concat", "model.head_norm": "layernorm"},
    ),
    # A determinism check: trains exactly as full (a CAS smoothing window of 1 is no
    # smoothing), so its paired difference must be 0.
    "full_repeat": ("Full model again (determinism check)", {"localization.cas_smoothing": 1}),
}
SHIPPED_GROUPS = {
    "shipped": (
        "full",
        "gate0",
        "concat",
        "visual",
        "audio",
        "window1",
        "window4",
        "window8",
        "window0",
        "embed64",
        "embed256",
        "stages1",
        "stages2",
        "stages3",
        "paper",
    ),  # fmt: skip
    # The rows of the paper's ablation table (METHOD_NOTES §2.5: the baselines in the same
    # code path and the number of stages), and the notes' own model.
    "paper_table": (
        "full",
        "visual",
        "audio",
        "concat",
        "softmax_bg",
        "stages1",
        "stages3",
        "paper",
    ),  # fmt: skip
    # The pre-registered conditions' comparison (docs/benchmark.md).
    "conditions": ("full", "gate0", "full_headnorm", "gate0_headnorm", "concat"),
    "head_norm": ("full", "gate0", "concat", "full_headnorm", "gate0_headnorm", "concat_headnorm"),
}
# docs/benchmark.md, "Pre-registered conditions": make-benchmark parameters per condition.
CONDITIONS: dict[str, dict] = {
    "default": {},
    "segment_offsets": {"segment_misalignment_seconds": 2.0},
    "sparse_audio": {"audio_cue_fraction": 0.25},
    "silent_stretches": {"silent_stretch_prob": 0.5, "stretch_fraction": 0.3},
    "occluded_stretches": {"occluded_stretch_prob": 0.5, "stretch_fraction": 0.3},
    "music": {"music_probability": 1.0},
    # The harder condition (docs/benchmark.md, "A harder condition"), fixed before any run;
    # the occluded-stretch probability 0.5 -> 0.25 by its calibration rule (pilot: 24.7).
    "sparse_occluded": {
        "audio_cue_fraction": 0.25,
        "occluded_stretch_prob": 0.25,
        "stretch_fraction": 0.3,
    },
}
# METHOD_NOTES §7: the paper's ActivityNet1.2 row (as listed in a public WTAL survey).
PUBLISHED = {
    "activitynet12": {
        "source": "Lee et al. (ICLR 2021), ActivityNet1.2, METHOD_NOTES §7",
        "metrics": {"mAP@0.50": 0.448, "mAP@0.75": 0.267, "mAP@0.95": 0.010, "average_mAP": 0.260},
    },
}
SHIPPED_DETECTION_KEYS = ("average_mAP", "mAP@0.50", "mAP@0.75", "mAP@0.95")
DETECTION_KEYS = ("average_mAP", "mAP@0.50", "mAP@0.75")
AVE_KEYS = ("accuracy", "accuracy_ungated")


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


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--flavour", choices=("activitynet12", "ave"), default="activitynet12")
    p.add_argument(
        "--seeds",
        help="Training seeds, comma-separated (default 0,1,2; with --config 0,1,2,3,4).",
    )
    p.add_argument(
        "--variants",
        help=f"a group {sorted(GROUPS)} (core = {','.join(CORE)}; the default) "
        f"or a comma list of {list(VARIANTS)}; with --config a group "
        f"{sorted(SHIPPED_GROUPS)} (default shipped) or a comma list of "
        f"{list(SHIPPED_VARIANTS)}",
    )
    p.add_argument(
        "--config",
        help="Shipped-config mode: the config file users run (configs/activitynet12.py, "
        "configs/ave.py, configs/thumos14.py), trained as it is but for --steps/--batch-size.",
    )
    p.add_argument("--batch-size", type=int, help="With --config: scale train.batch_size.")
    p.add_argument(
        "--data-dir",
        help="With --config: a dataset built from the real features (avloc build-data) "
        "instead of the benchmark.",
    )
    p.add_argument(
        "--condition",
        default="default",
        choices=sorted(CONDITIONS),
        help="With --config, on the benchmark: a pre-registered condition (docs/benchmark.md).",
    )
    p.add_argument("--out", help="With --config: where the table goes (default: <work>/reports).")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.01,
        help="With --config: a cell differs from the published one when the 95 %% t interval "
        "of (ours − published) lies on one side of 0 and not inside ± this "
        "(default 0.01 = 1 mAP point).",
    )
    add_delta_flag(p)
    p.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: 1 seed, 100 steps, small benchmark; writes no docs.",
    )
    p.add_argument("--bench-seed", type=int, default=0, help="Seed of the benchmark features.")
    p.add_argument(
        "--work",
        default="/tmp/avloc_ablations",
        help="Benchmark files, TFDS data and run workdirs.",
    )
    p.add_argument("--annotations", help="Real annotations (default: ../shared/data/<flavour>).")
    p.add_argument("--steps", type=int, help="Override train.num_steps.")
    p.add_argument(
        "--docs", default=str(REPO / "docs"), help="Where results.md and results_<flavour>.json go."
    )
    return p


def prepare_data(
    flavour: str,
    work: Path,
    bench_seed: int,
    annotations: str | None,
    quick: bool,
    *,
    condition: str = "default",
    builder_config: str | None = None,
) -> Path:
    """make-benchmark + build-data once; returns the TFDS data dir. `condition` names a
    pre-registered benchmark condition (CONDITIONS); `builder_config` the TFDS build
    (default: AVE's weak setting, as configs/benchmark_ave.py, else "default")."""
    from avloc_jax.benchmark import generator as benchmark
    from tfds_builders import build as build_data

    if builder_config is None:
        builder_config = "weak" if flavour == "ave" else "default"
    tag = f"{flavour}_s{bench_seed}{'_quick' if quick else ''}"
    if condition != "default":
        tag += f"_{condition}"
    if flavour == "ave" and builder_config != "weak":
        tag += f"_{builder_config}"
    src, data = work / f"src_{tag}", work / f"data_{tag}"
    config = benchmark.default_config(flavour)
    config.update(CONDITIONS[condition])
    if quick:
        if flavour == "activitynet12":
            config.num_train, config.num_test = 120, 60
        else:
            config.num_train, config.num_val, config.num_test, config.num_noisy = 400, 100, 100, 20
    if not (src / "benchmark.json").is_file():
        benchmark.make_benchmark(
            flavour, src, annotations=annotations, config=config, seed=bench_seed, overwrite=True
        )
    if not (data / flavour / builder_config / "1.0.0" / "dataset_info.json").is_file():
        build_data.build(
            flavour, data, builder_config=builder_config, manual_dir=src, overwrite=True
        )
    return data


def run_one(
    flavour: str, variant: str, seed: int, data: Path, work: Path, steps: int | None, quick: bool
) -> dict:
    from avloc_jax.engine import train

    workdir = work / f"runs_{flavour}{'_quick' if quick else ''}" / variant / f"seed{seed}"
    done = workdir / "ablation_result.json"
    if done.is_file():
        return json.loads(done.read_text())
    config = importlib.import_module(f"configs.benchmark_{flavour}").get_config()
    config.data.data_dir = str(data)
    config.seed = seed
    if quick:
        config.train.num_steps = 100
        config.eval.every_steps = 50
        config.train.checkpoint_every_steps = 50
        config.loss.consistency_warmup_steps = 50
    if steps:
        config.train.num_steps = steps
    from avloc_jax.common.config_overrides import apply_overrides

    apply_overrides(config, VARIANTS[variant][1])  # as `--config.a.b=v` would
    if workdir.exists():  # an unfinished run: start it again from scratch
        import shutil

        shutil.rmtree(workdir)
    start = time.perf_counter()
    outcome = train.train_and_evaluate(config, workdir)
    result = {
        "variant": variant,
        "seed": seed,
        "overrides": VARIANTS[variant][1],
        "num_steps": int(config.train.num_steps),
        "best_step": outcome.get("best_step"),
        "seconds": round(time.perf_counter() - start, 1),
        "run_environment": _run_environment(),
        "val": outcome["val"],
        "test": outcome["test"],
    }
    done.write_text(json.dumps(result, indent=1))
    return result


def cpu_model() -> str:
    """The CPU model as the machine reports it (/proc/cpuinfo, else `platform`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages now (None where the OS has none)."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(x, 2) for x in os.getloadavg()]


def _machine(load_at_start: list[float] | None = None) -> dict:
    """What the machine is, measured when the report is written: platform, CPU model,
    cores (`os.cpu_count`) and the cores this process may use (affinity), the load
    average when the study started and now. Nothing in it is written by hand."""
    import jax

    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "measured": True,
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpus": os.cpu_count(),
        "usable_cpus": len(affinity) if affinity is not None else os.cpu_count(),
        "load_average_start": load_at_start,
        "load_average_end": load_average(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
    }


def machine_text(machine: dict) -> str:
    """One sentence on the machine of a report. Reports written before `_machine` measured
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


def _run_environment() -> dict:
    """How the training process was placed: the cores it may use and the XLA flags (runs
    pinned to one core with a single-threaded XLA take about 1.7x as long as unpinned
    ones on this 2-core machine, and two of them run side by side)."""
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return {
        "usable_cpus": len(affinity) if affinity is not None else os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }


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


def mean_sd_cell(mean: float, sd: float | None, scale: float = 100.0) -> str:
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
    seeds both have (a study still running)."""
    a = scores_by_seed(results, first, key, split)
    b = scores_by_seed(results, second, key, split)
    if common_seeds:
        shared = set(a) & set(b)
        a = {s: x for s, x in a.items() if s in shared}
        b = {s: x for s, x in b.items() if s in shared}
    return stats.paired_comparison(a, b, delta=delta)


def comparison_cells(c: stats.PairedComparison, scale: float = 100.0) -> dict[str, str]:
    """The table cells of a paired comparison, ×`scale`: diff (d̄ ± sd), ci (95 % t), p,
    boot (percentile bootstrap), verdict (filled in by the caller, which names the rows)
    and power (seeds for 80 % power when inconclusive)."""
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


def paired_row_cells(
    runs: list[dict],
    a: str,
    b: str,
    key: str,
    *,
    delta: float = stats.DEFAULT_DELTA,
    common_seeds: bool = False,
    scale: float = 100.0,
) -> str:
    """The cells `n | a | b | a − b | 95 % CI | p | bootstrap CI | verdict | power` of one
    paired comparison (the table row shared by bench/conditions_table.py and
    bench/evidence_tables.py). With `common_seeds` both rows' scores and the pairing use
    the seeds both have (a row not extended to every seed); otherwise mismatched seeds are
    refused (ValueError)."""
    if common_seeds:
        shared = set(scores_by_seed(runs, a, key)) & set(scores_by_seed(runs, b, key))
        runs = [r for r in runs if r["seed"] in shared]
    summary = summarise(runs, (key,))
    c = compare(runs, a, b, key, delta=delta)
    cell = comparison_cells(c, scale)
    return (
        f"{c.n} | {mean_sd_cell(*summary[a][key], scale=scale)} "
        f"| {mean_sd_cell(*summary[b][key], scale=scale)} | {cell['diff']} | {cell['ci']} "
        f"| {cell['p']} | {cell['boot']} | {stats.verdict_label(c, a, b)} | {cell['power']}"
    )


def _proxy_reference(variant: str) -> str:
    """The full model trained as long as the row (the longer rows have their own)."""
    return "full_1k" if variant.endswith("_1k") else "full"


def markdown_table(
    flavour: str, summary: dict, keys: tuple[str, ...], payload: dict,
    *, delta: float = stats.DEFAULT_DELTA,
) -> str:  # fmt: skip
    """The proxy study's table of one flavour, recomputed from the per-run scores in
    `payload["runs"]`: each row's mean ± sample std over seeds, and full − row paired by
    seed with its 95 % t interval, p, bootstrap interval and verdict."""
    scale = 100.0
    k = keys[0]
    runs = payload["runs"]
    summary = summarise(runs, keys)  # never the report's stored (population-std) summary
    lines = [
        f"Flavour `{flavour}`, test split, ×100; each row: mean ± sample std (ddof = 1) over "
        f"its seeds. full − row: paired by seed (the same seed gives the same initialisation "
        f"and data order), d̄ ± sample sd, 95 % t interval, p (paired t-test), 95 % "
        f"percentile-bootstrap interval; verdict against Δ = {scale * delta:.1f} point "
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
    for variant in VARIANTS:
        if variant not in summary:
            continue
        row = summary[variant]
        cells = [mean_sd_cell(*row[key], scale=scale) for key in keys]
        reference = _proxy_reference(variant)
        if variant == reference or reference not in summary:
            cells += ["—"] * 5
        else:
            c = compare(runs, reference, variant, k, delta=delta)
            cell = comparison_cells(c, scale)
            cells += [cell["diff"], cell["ci"], cell["p"], cell["boot"],
                      stats.verdict_label(c, "full", "row")]  # fmt: skip
        lines.append(
            f"| {VARIANTS[variant][0]} | {len(row['seeds'])} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def write_docs(docs: Path, flavour: str, table_md: str) -> None:
    """Replace the flavour's generated block of docs/results.md (the markers that
    bench/evidence_tables.py also writes); the text around it is kept."""
    path = docs / "results.md"
    name = f"proxy_{flavour}"
    begin, end = f"<!-- evidence:{name} begin -->", f"<!-- evidence:{name} end -->"
    text = path.read_text() if path.is_file() else "# Results on the semi-synthetic benchmark\n\n"
    block = f"{begin}\n{table_md}\n{end}"
    if begin in text and end in text:
        text = re.sub(re.escape(begin) + ".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + f"\n\n## {flavour}\n\n{block}\n"
    io.atomic_write_text(path, text)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    os.environ.setdefault("AVLOC_PROGRESS", "0")
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    if args.config:
        return main_shipped(args, argv)
    if args.batch_size or args.data_dir or args.condition != "default":
        print("--batch-size, --data-dir and --condition need --config", file=sys.stderr)
        return 2
    seeds = [int(s) for s in (args.seeds or "0,1,2").split(",") if s.strip()]
    args.variants = args.variants or "core"
    if args.variants in GROUPS:
        variants = list(GROUPS[args.variants])
    else:
        variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        print(f"unknown variants {unknown}; expected {list(VARIANTS)}", file=sys.stderr)
        return 2
    if args.quick:
        seeds = seeds[:1]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    load_at_start = load_average()
    started = time.perf_counter()
    data = prepare_data(args.flavour, work, args.bench_seed, args.annotations, args.quick)
    print(f"data ready in {time.perf_counter() - started:.0f} s: {data}", flush=True)

    keys = DETECTION_KEYS if args.flavour == "activitynet12" else AVE_KEYS
    docs = Path(args.docs)
    json_path = docs / f"results_{args.flavour}.json"
    previous = json.loads(json_path.read_text()) if json_path.is_file() and not args.quick else {}
    results = [
        r for r in previous.get("runs", []) if not (r["variant"] in variants and r["seed"] in seeds)
    ]
    this_command = "python bench/ablations.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    payload = None
    for variant in variants:
        for seed in seeds:
            r = run_one(args.flavour, variant, seed, data, work, args.steps, args.quick)
            results.append(r)
            metric = r["test"][keys[0]]
            print(
                f"{variant:14s} seed {seed}: test {keys[0]} {metric:.4f} ({r['seconds']:.0f} s)",
                flush=True,
            )
            payload = {
                "flavour": args.flavour,
                "command": this_command,
                "machine": _machine(load_at_start),
                "bench_seed": args.bench_seed,
                "num_steps": sorted({int(run["num_steps"]) for run in results}),
                "commands": previous.get("commands", []) + [this_command],
                "run_minutes": sum(r["seconds"] for r in results) / 60,
                "keys": list(keys),
                "summary": summarise(results, keys),
                "runs": results,
            }
            if not args.quick:
                docs.mkdir(parents=True, exist_ok=True)
                io.atomic_write_json(json_path, payload)
                write_docs(
                    docs,
                    args.flavour,
                    markdown_table(
                        args.flavour, payload["summary"], keys, payload, delta=args.delta
                    ),
                )
    if payload is not None:
        print(markdown_table(args.flavour, payload["summary"], keys, payload, delta=args.delta))
    return 0


# ----------------------------------------------------------------------------- shipped mode


def load_config_file(path: str | Path):
    """`get_config()` of a config file (e.g. configs/activitynet12.py), by path."""
    import importlib.util

    path = Path(path).resolve()
    if path.parent == REPO / "configs":  # a shipped config: import it as configs.<name>
        return importlib.import_module(f"configs.{path.stem}").get_config()
    spec = importlib.util.spec_from_file_location(f"_avloc_config_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load a config from {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def shipped_variant_overrides(variant: str) -> dict:
    if variant == "paper":
        from configs import paper

        return dict(paper.OVERRIDES)
    return dict(SHIPPED_VARIANTS[variant][1])


# The benchmark's held-out share of training for model selection, as the pre-registered
# protocol fixes it (docs/benchmark.md): 15 % of the 600 training videos.
BENCHMARK_VAL_FRACTION = 0.15


def scaled_keys(config, steps: int | None, batch_size: int | None) -> dict[str, list[int]]:
    """{key: [shipped value, value used]} for the step budget and the batch size; the
    evaluation and checkpoint intervals scale with the steps (bookkeeping: as many
    evaluations as the shipped run). Nothing else changes."""
    scaled: dict[str, list[int]] = {}
    if steps:
        shipped_steps = int(config.train.num_steps)
        scaled["train.num_steps"] = [shipped_steps, steps]
        for key in ("eval.every_steps", "train.checkpoint_every_steps"):
            section, leaf = key.split(".")
            value = int(config[section][leaf])
            scaled[key] = [value, max(1, round(value * steps / shipped_steps))]
    if batch_size:
        scaled["train.batch_size"] = [int(config.train.batch_size), batch_size]
    return scaled


def resolve_shipped_config(
    config_path: str | Path,
    variant: str,
    seed: int,
    data_dir: Path,
    *,
    steps: int | None,
    batch_size: int | None,
    data_name: str | None,
):
    """(config, scaled, fixed): the shipped config with the variant's overrides, the
    scaling (`scaled_keys`), and what running it needs (data dir, seed, and on the
    benchmark the data format's name, e.g. thumos14's config on the ActivityNet-format
    benchmark)."""
    from avloc_jax.common.config_overrides import apply_overrides

    config = load_config_file(config_path)
    scaled = scaled_keys(config, steps, batch_size)
    fixed: dict = {"data.data_dir": str(data_dir), "seed": seed}
    if data_name:  # on the benchmark (docs/benchmark.md, "Protocol")
        fixed["data.val_fraction"] = BENCHMARK_VAL_FRACTION
    if data_name and data_name != config.data.name:
        fixed["data.name"] = data_name
    overrides = {**fixed, **{k: v[1] for k, v in scaled.items()}}
    overrides.update(shipped_variant_overrides(variant))
    apply_overrides(config, overrides)
    return config, scaled, fixed


def _config_hash(config) -> str:
    import hashlib

    return hashlib.sha256(config.to_json_best_effort(sort_keys=True).encode()).hexdigest()[:16]


def run_shipped(
    config_path: str | Path,
    variant: str,
    seed: int,
    data_dir: Path,
    runs: Path,
    *,
    steps: int | None,
    batch_size: int | None,
    data_name: str | None,
    done_by_hash: dict[str, dict],
) -> dict:
    """One (variant, seed) run in runs/<variant>/seed<seed>; a finished one is read back,
    and one whose resolved config another row already trained reuses that row's run."""
    from avloc_jax.engine import train

    config, scaled, fixed = resolve_shipped_config(
        config_path, variant, seed, data_dir, steps=steps, batch_size=batch_size,
        data_name=data_name,
    )  # fmt: skip
    digest = _config_hash(config)
    workdir = runs / variant / f"seed{seed}"
    done = workdir / "ablation_result.json"
    base = {
        "variant": variant,
        "seed": seed,
        "overrides": shipped_variant_overrides(variant),
        "scaled": scaled,
        "fixed": {k: v for k, v in fixed.items() if k != "data.data_dir"},
        "config_hash": digest,
    }
    if done.is_file():
        result = json.loads(done.read_text())
        if result.get("config_hash") == digest:
            done_by_hash.setdefault(digest, result)
            return result
    if digest in done_by_hash:
        twin = done_by_hash[digest]
        return {**twin, **base, "same_config_as": twin["variant"], "seconds": 0.0}
    if workdir.exists():  # unfinished, or trained with another config: from scratch
        import shutil

        shutil.rmtree(workdir)
    start = time.perf_counter()
    outcome = train.train_and_evaluate(config, workdir)
    result = {
        **base,
        "num_steps": int(config.train.num_steps),
        "batch_size": int(config.train.batch_size),
        "best_step": outcome.get("best_step"),
        "seconds": round(time.perf_counter() - start, 1),
        "run_environment": _run_environment(),
        "val": outcome["val"],
        "test": outcome["test"],
    }
    io.atomic_write_json(done, result)
    done_by_hash[digest] = result
    return result


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


def _scaling_text(scaled: dict[str, list[int]]) -> str:
    if not scaled:
        return "nothing scaled: the shipped config as it is"
    return ", ".join(f"`{k}` {a} → {b}" for k, (a, b) in scaled.items())


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
    first_run = {}
    for r in runs:
        first_run.setdefault(r["variant"], r)
    scale = 100.0
    lines = [
        f"Config `{payload['config']}` on {payload['data']}; test split, ×100; each row: "
        f"mean ± sample std (ddof = 1) over seeds {payload['seeds']}. Scaled: "
        f"{_scaling_text(payload['scaled'])} (every row; nothing else differs from the "
        "shipped config but the row's overrides).",
        f"full − row on {k}: paired by seed (same initialisation of the shared parameters, "
        "same data order); d̄ ± sample sd, 95 % t interval, p (paired t-test), 95 % "
        f"percentile-bootstrap interval, verdict against Δ = {scale * delta:.1f} point "
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
        cells = [mean_sd_cell(*row[key], scale=scale) for key in keys]
        val_cell = mean_sd_cell(*val_summary[variant][k], scale=scale)
        if variant == "full":
            cells += ["—"] * 6 + [val_cell] + ["—"] * 3
        else:
            c = compare(runs, "full", variant, k, delta=delta, common_seeds=not strict)
            cell = comparison_cells(c, scale)
            v = compare(runs, variant, "full", k, split="val", delta=delta, common_seeds=not strict)
            vcell = comparison_cells(v, scale)
            cells += [
                cell["diff"], cell["ci"], cell["p"], cell["boot"],
                stats.verdict_label(c, "full", "row"), cell["power"],
                val_cell, vcell["diff"], vcell["ci"], stats.verdict_label(v, "row", "full"),
            ]  # fmt: skip
        overrides = first_run[variant].get("overrides", {})
        text = ", ".join(f"{a}={b}" for a, b in overrides.items()) or "—"
        twin = first_run[variant].get("same_config_as")
        if twin:
            text += f" (= `{twin}`'s config: its runs)"
        label = SHIPPED_VARIANTS.get(variant, (variant,))[0]
        lines.append(f"| {label} | {text} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    pick = validation_pick(runs, k, delta=delta)
    moves = pick["moves_default_to"]
    lines += [
        "",
        f"On validation the best mean is `{pick['best']}` "
        f"({scale * pick['val_means'][pick['best']]:.1f} val {k}). "
        + (
            f"Under the rule the default would move to `{moves[0]}` (its paired val lead "
            "over full is supported)."
            if moves
            else "No row's paired val lead over full is supported: the default stays."
        ),
    ]
    published = payload.get("published")
    if published:
        cells = []
        for key in keys:
            item = payload["published_comparison"].get(key)
            if item is None:
                cells.append("–")
            else:
                mark = " **≠**" if item["differs"] else ""
                cells.append(f"{scale * item['published']:.1f}{mark}")
        lines += [
            "",
            f"| Published: {published['source']} | " + " | ".join(cells) + " |",
            "|---|" + "---|" * len(keys),
            "",
            "**≠**: the full row differs from the published one: the 95 % t interval of "
            "(full − published) lies entirely on one side of 0 and not inside "
            f"±{scale * payload['tolerance']:.1f} point.",
        ]
    elif payload.get("published_note"):
        lines += ["", payload["published_note"]]
    return "\n".join(lines)


def _reused(result: dict) -> str:
    twin = result.get("same_config_as")
    return f", the runs of {twin}" if twin else ""


def main_shipped(args: argparse.Namespace, argv: list[str] | None) -> int:
    config_path = Path(args.config)
    if not config_path.is_file() and (REPO / config_path).is_file():
        config_path = REPO / config_path
    shipped = load_config_file(config_path)
    seeds = [int(s) for s in (args.seeds or "0,1,2,3,4").split(",") if s.strip()]
    group = args.variants or "shipped"
    variants = (
        list(SHIPPED_GROUPS[group])
        if group in SHIPPED_GROUPS
        else [v.strip() for v in group.split(",") if v.strip()]
    )
    unknown = [v for v in variants if v not in SHIPPED_VARIANTS]
    if unknown:
        print(f"unknown variants {unknown}; expected {list(SHIPPED_VARIANTS)}", file=sys.stderr)
        return 2
    if "full" not in variants:
        variants.insert(0, "full")  # every row is paired with it
    steps = args.steps
    if args.quick:
        seeds, steps = seeds[:2], steps or 100
    name = shipped.data.name
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    if args.data_dir:
        if args.condition != "default":
            print("--condition applies to the benchmark, not to --data-dir", file=sys.stderr)
            return 2
        data, data_name = Path(args.data_dir).expanduser(), None
        data_text = f"the user's `{name}` build in `{data}`"
        source = "data_" + re.sub(r"[^A-Za-z0-9]+", "_", str(data.resolve())).strip("_")[-40:]
    else:
        flavour = "ave" if name == "ave" else "activitynet12"
        builder_config = (
            ("weak" if shipped.data.weak_setting else "default") if name == "ave" else None
        )
        data = prepare_data(
            flavour, work, args.bench_seed, args.annotations, args.quick,
            condition=args.condition, builder_config=builder_config,
        )  # fmt: skip
        data_name = flavour
        data_text = (
            f"the `{flavour}` benchmark (seed {args.bench_seed}, condition `{args.condition}`"
            f"{', quick' if args.quick else ''})"
        )
        source = (
            f"bench_{flavour}_s{args.bench_seed}_{args.condition}{'_quick' if args.quick else ''}"
        )
    tag = f"{config_path.stem}_{source}_steps{steps or 'shipped'}_b{args.batch_size or 'shipped'}"
    runs_dir = work / "runs_shipped" / tag
    keys = SHIPPED_DETECTION_KEYS if name != "ave" else AVE_KEYS
    this_command = "python bench/ablations.py " + " ".join(
        argv if argv is not None else sys.argv[1:]
    )
    out = Path(args.out) if args.out else work / "reports"
    load_at_start = load_average()
    results: list[dict] = []
    done_by_hash: dict[str, dict] = {}
    payload: dict = {}
    for variant in variants:
        for seed in seeds:
            r = run_shipped(
                config_path, variant, seed, data, runs_dir, steps=steps,
                batch_size=args.batch_size, data_name=data_name, done_by_hash=done_by_hash,
            )  # fmt: skip
            results.append(r)
            print(
                f"{variant:16s} seed {seed}: test {keys[0]} {r['test'][keys[0]]:.4f} "
                f"({r['seconds']:.0f} s{_reused(r)})",
                flush=True,
            )
            summary = summarise(results, keys)
            payload = {
                "config": str(
                    config_path.relative_to(REPO)
                    if config_path.is_relative_to(REPO)
                    else config_path
                ),
                "data": data_text,
                "data_dir": str(data),
                "condition": None if args.data_dir else args.condition,
                "condition_params": None if args.data_dir else CONDITIONS[args.condition],
                "bench_seed": None if args.data_dir else args.bench_seed,
                "seeds": seeds,
                "scaled": results[0]["scaled"],
                "command": this_command,
                "machine": _machine(load_at_start),
                "run_minutes": sum(x["seconds"] for x in results) / 60,
                "keys": list(keys),
                "summary": summary,
                "delta": args.delta,
                "paired": paired_differences(results, keys[0], delta=args.delta),
                "validation_pick": validation_pick(results, keys[0], delta=args.delta),
                "tolerance": args.tolerance,
                "runs": results,
            }
            published = PUBLISHED.get(name) if args.data_dir else None
            if published:
                payload["published"] = published
                payload["published_comparison"] = published_comparison(
                    results, published, args.tolerance
                )
            elif args.data_dir:
                payload["published_note"] = f"METHOD_NOTES §7 has no published row for `{name}`."
            else:
                payload["published_note"] = (
                    "Benchmark features are synthetic: no comparison with published figures."
                )
            out.mkdir(parents=True, exist_ok=True)
            io.atomic_write_json(out / f"ablation_{tag}.json", payload)
            io.atomic_write_text(
                out / f"ablation_{tag}.md", shipped_markdown(payload, args.delta) + "\n"
            )
    print(shipped_markdown(payload, args.delta))
    print(f"wrote {out / f'ablation_{tag}.json'} and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
