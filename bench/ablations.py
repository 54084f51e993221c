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
DETECTION_KEYS = ("average_mAP", "mAP@0.50", "mAP@0.75")
AVE_KEYS = ("accuracy", "accuracy_ungated")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--flavour", choices=("activitynet12", "ave"), default="activitynet12")
    p.add_argument("--seeds", default="0,1,2", help="Training seeds, comma-separated.")
    p.add_argument(
        "--variants",
        default="core",
        help=f"a group {sorted(GROUPS)} (core = {','.join(CORE)}) "
        f"or a comma list of {list(VARIANTS)}",
    )
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
    flavour: str, work: Path, bench_seed: int, annotations: str | None, quick: bool
) -> Path:
    """make-benchmark + build-data once; returns the TFDS data dir."""
    from avloc_jax.benchmark import generator as benchmark
    from tfds_builders import build as build_data

    tag = f"{flavour}_s{bench_seed}{'_quick' if quick else ''}"
    src, data = work / f"src_{tag}", work / f"data_{tag}"
    config = benchmark.default_config(flavour)
    if quick:
        if flavour == "activitynet12":
            config.num_train, config.num_test = 120, 60
        else:
            config.num_train, config.num_val, config.num_test, config.num_noisy = 400, 100, 100, 20
    if not (src / "benchmark.json").is_file():
        benchmark.make_benchmark(
            flavour, src, annotations=annotations, config=config, seed=bench_seed, overwrite=True
        )
    # AVE: the weak setting (the 178 background-only videos join train), as
    # configs/benchmark_ave.py.
    builder_config = "weak" if flavour == "ave" else "default"
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
        "val": outcome["val"],
        "test": outcome["test"],
    }
    done.write_text(json.dumps(result, indent=1))
    return result


def _machine() -> dict:
    import jax

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "note": "2 CPU cores shared with other jobs during the runs",
    }


def summarise(results: list[dict], keys: tuple[str, ...]) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for r in results:
        table.setdefault(r["variant"], {"seeds": [], **{k: [] for k in keys}})
        table[r["variant"]]["seeds"].append(r["seed"])
        for k in keys:
            table[r["variant"]][k].append(float(r["test"][k]))
    return {
        v: {
            "seeds": row["seeds"],
            **{k: [float(np.mean(row[k])), float(np.std(row[k]))] for k in keys},
        }
        for v, row in table.items()
    }


def markdown_table(flavour: str, summary: dict, keys: tuple[str, ...], payload: dict) -> str:
    scale = 100.0
    lines = [
        f"Flavour `{flavour}`, test split, mean ± std over seeds (×100). "
        f"Last command: `{payload['command']}`.",
        f"Steps per run: {' or '.join(map(str, payload['num_steps']))} "
        "(a row's label gives its steps where they differ); "
        f"benchmark seed {payload['bench_seed']}; "
        f"{len(payload['runs'])} runs, {payload['run_minutes']:.1f} min of run time in all "
        "(sum over runs, "
        f"{payload['machine']['cpus']} CPU cores shared with other jobs).",
        "",
        f"| variant | seeds | {' | '.join(keys)} | full − row ({keys[0]}) |",
        "|---|---|" + "---|" * (len(keys) + 1),
    ]
    k = keys[0]

    def lead(reference: dict, row: dict) -> tuple[float, float]:
        """(reference mean − row mean, the larger of the two stds) of the first metric."""
        return reference[k][0] - row[k][0], max(reference[k][1], row[k][1])

    def gap_cell(variant: str, row: dict) -> str:
        # The full model trained as long as the row (the longer rows have their own full row).
        reference = summary.get("full_1k" if variant.endswith("_1k") else "full")
        if reference is None or variant in ("full", "full_1k"):
            return ""
        gap, spread = lead(reference, row)
        return f"{scale * gap:+.1f}" + (" (> 2 std)" if abs(gap) > 2 * spread else "")

    for variant in VARIANTS:
        if variant not in summary:
            continue
        row = summary[variant]
        cells = [f"{scale * row[key][0]:.1f} ± {scale * row[key][1]:.1f}" for key in keys]
        cells.append(gap_cell(variant, row))
        lines.append(
            f"| {VARIANTS[variant][0]} | {len(row['seeds'])} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        f"Full model vs each baseline ({k}; target: a lead of more than twice the larger std):",
        "",
    ]
    for suffix in ("", "_1k"):  # the default length, and the longer-training rows
        if "full" + suffix not in summary:
            continue
        for b in BASELINES:
            if b + suffix in summary:
                gap, spread = lead(summary["full" + suffix], summary[b + suffix])
                verdict = "yes" if gap > 2 * spread else "**no**"
                lines.append(
                    f"* full{suffix} − {b}{suffix}: {scale * gap:+.1f} "
                    f"(larger std {scale * spread:.1f}); met: {verdict}"
                )
    return "\n".join(lines)


def write_docs(docs: Path, flavour: str, table_md: str) -> None:
    path = docs / "results.md"
    begin, end = f"<!-- table:{flavour} -->", f"<!-- end:{flavour} -->"
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
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
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
                "machine": _machine(),
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
                    markdown_table(args.flavour, payload["summary"], keys, payload),
                )
    if payload is not None:
        print(markdown_table(args.flavour, payload["summary"], keys, payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
