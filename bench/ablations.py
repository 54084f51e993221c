"""Ablation studies on the semi-synthetic benchmark or the user's data (docs/results.md).

  python bench/ablations.py --grid NAME [--work DIR] [--out DIR] [--quick]
  python bench/ablations.py --config configs/activitynet12.py [--steps N] [--batch-size B] \
      [--variants shipped|paper_table|conditions|head_norm|a,b,...] [--seeds 0,1,2,3,4] \
      [--condition default|segment_offsets|...] [--data-dir DIR] [--out DIR]
  python bench/ablations.py --flavour activitynet12|ave [--seeds 0,1,2] [--quick] \
      [--variants core|grid|grid_ave|longer|all|a,b,...]

One program, driven by a grid (bench/ablation_grids.py): the config it ablates, its rows
(each a config override), seeds, budget, benchmark condition or data, Δ and, where it was
written before the runs, its rule. `--grid NAME` runs a named study of docs/results.md;
`--config` and `--flavour` build a grid from the flags. The grid is checked whole before
anything is built or written (an unknown row, a typo'd config key or a bad value is one
`error:` line, exit 2). Then the benchmark is built once (make-benchmark on the real
annotations, then the TFDS build) unless `--data-dir` names the user's build
(`avloc build-data`), and every row × seed trains in-process; a finished run is kept and
read back, so an interrupted study resumes.

`--config`: the configs users run (configs/activitynet12.py, ave.py, thumos14.py) as they
ship, with only `train.num_steps` and `train.batch_size` scaled (the evaluation and
checkpoint intervals follow the steps), recorded in every row. Rows are paired with the
full model by seed (same seed: same initialisation of the shared parameters, same data
order): full − row per seed, mean and sample std, 95 % paired-t interval, p, a bootstrap
interval and the verdict of `avloc_jax.benchmark.stats` (supported / ruled out /
inconclusive against Δ, `--delta`; no claim under 5 seeds); on validation row − full (the
rule for changing a default). Writes ``ablation_<tag>.json`` and ``.md`` into `--out`,
beside the paper's published row (METHOD_NOTES §7) on real ActivityNet features.

`--flavour`: the earlier proxy study of configs/benchmark_<flavour>.py; rewrites
``docs/results_<flavour>.json`` (every run, of this command and earlier ones) and its
table in ``docs/results.md`` after every run.

The machine note of every report is measured (CPU model, cores, load average at the
start and at the end). `python bench/evidence_tables.py` regenerates every table in docs/.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from ablation_grids import (  # noqa: E402
    CONDITIONS,
    GRIDS,
    PROXY,
    SHIPPED,
    Grid,
    GridError,
    select,
)
from ablation_resolve import check_grid  # noqa: E402
from ablation_stats import add_delta_flag  # noqa: E402

PROGRAM = "ablations.py"
# Flags that define a study: a named grid fixes them all.
STUDY_FLAGS = ("flavour", "config", "variants", "seeds", "steps", "batch_size", "condition",
               "data_dir", "bench_seed", "delta", "tolerance")  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROGRAM,
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--grid",
        choices=sorted(GRIDS),
        help="A named study (bench/ablation_grids.py GRIDS): config, rows, seeds, budget, "
        "condition, Δ and rule as written there.",
    )
    p.add_argument("--flavour", choices=("activitynet12", "ave"), help="The proxy study.")
    p.add_argument(
        "--seeds",
        help="Training seeds, comma-separated (default 0,1,2; with --config 0,1,2,3,4).",
    )
    p.add_argument(
        "--variants",
        help=f"a group {sorted(PROXY.groups)} (default {PROXY.default_group}) or a comma list "
        f"of {list(PROXY.variants)}; with --config a group {sorted(SHIPPED.groups)} (default "
        f"{SHIPPED.default_group}) or a comma list of {list(SHIPPED.variants)}",
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
        choices=sorted(CONDITIONS),
        help="With --config, on the benchmark: a pre-registered condition (docs/benchmark.md; "
        "default: default).",
    )
    p.add_argument("--out", help="With --config: where the table goes (default: <work>/reports).")
    p.add_argument(
        "--tolerance",
        type=float,
        help="With --config: a cell differs from the published one when the 95 %% t interval "
        "of (ours − published) lies on one side of 0 and not inside ± this "
        "(default 0.01 = 1 mAP point).",
    )
    add_delta_flag(p)
    p.set_defaults(delta=None)  # to tell a given --delta from the default (named grids)
    p.add_argument(
        "--quick",
        action="store_true",
        help="Smoke run: fewer seeds, 100 steps, small benchmark; the proxy study writes no docs.",
    )
    p.add_argument("--bench-seed", type=int, help="Seed of the benchmark features (default 0).")
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


def _seeds(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise GridError(f"--seeds {text}: expected comma-separated integers") from None


def grid_from_args(args: argparse.Namespace) -> Grid:
    """The grid a command line names: `--grid`, else one built from the flags."""
    if args.grid:
        given = [f"--{f.replace('_', '-')}" for f in STUDY_FLAGS if getattr(args, f) is not None]
        if given:
            raise GridError(f"--grid {args.grid} fixes the study; drop {', '.join(given)}")
        return GRIDS[args.grid]
    if args.config and args.flavour:
        raise GridError("--config and --flavour: give one (--flavour is the proxy study)")
    if args.config:
        catalogue, config = SHIPPED, args.config
    else:
        catalogue = PROXY
        config = f"configs/benchmark_{args.flavour or 'activitynet12'}.py"
    grid = Grid(
        catalogue=catalogue,
        config=config,
        variants=select(catalogue, args.variants),
        seeds=_seeds(args.seeds) if args.seeds else catalogue.default_seeds,
        steps=args.steps,
        batch_size=args.batch_size,
        condition=args.condition or "default",
        bench_seed=0 if args.bench_seed is None else args.bench_seed,
        data_dir=args.data_dir,
    )
    for field in ("delta", "tolerance"):
        if getattr(args, field) is not None:
            grid = dataclasses.replace(grid, **{field: getattr(args, field)})
    return grid


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        grid = grid_from_args(args)
        if args.quick:
            grid = grid.quickened()
        check_grid(grid)
    except GridError as err:
        print(f"{PROGRAM}: error: {err}", file=sys.stderr)
        return 2
    os.environ.setdefault("AVLOC_PROGRESS", "0")
    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.WARNING)
    logging.getLogger().setLevel(logging.WARNING)
    import ablation_runner

    runtime = ablation_runner.Runtime(
        work=Path(args.work),
        out=Path(args.out) if args.out else None,
        docs=Path(args.docs),
        annotations=args.annotations,
        command=f"python bench/{PROGRAM} " + " ".join(argv if argv is not None else sys.argv[1:]),
    )
    return ablation_runner.run_grid(grid, runtime)


if __name__ == "__main__":
    sys.exit(main())
