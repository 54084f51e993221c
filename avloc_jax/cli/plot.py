"""`avloc plot`: figures of a trained model, or its training curves.

    avloc plot --workdir W --split test [--videos 4] [--data-dir D] --out DIR
    avloc plot --bundle B --split test --data-dir D --out DIR
    avloc plot --workdir W --curves --out DIR

Per video (`DIR/<split>_<video>.png`): the CAS p_t(c) of the ground-truth and
top-scoring classes, the reliability μ_t with the gate θ, and the ground-truth and
predicted segments. For the first video also `DIR/<split>_<video>_attention.png`, the
audio/visual cross-attention of the last stage (skipped, with a note, for models
without cross-attention). Videos with ground-truth segments are plotted first.

`--curves` writes `DIR/curves.png` from `W/metrics.jsonl`: loss terms, learning rate,
the validation metric, throughput. Everything is drawn headless (Agg).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from avloc_jax.cli import messages
from avloc_jax.common.workdir import Workdir

PROGRAM = "avloc plot"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--workdir", help="a workdir written by `avloc train`")
    source.add_argument(
        "--bundle", help="an inference bundle written by `avloc export` (not with --curves)"
    )
    parser.add_argument(
        "--split", help="val, test, train or a split name: plot videos of this split"
    )
    parser.add_argument("--videos", type=int, default=4, help="how many videos to plot (default 4)")
    parser.add_argument(
        "--data-dir", help="where the dataset was built (default: the config's data.data_dir)"
    )
    parser.add_argument(
        "--curves", action="store_true", help="plot training curves from W/metrics.jsonl instead"
    )
    parser.add_argument("--out", required=True, help="output directory for the PNG files")
    return parser


_note = functools.partial(messages.note, PROGRAM)
_fail = functools.partial(messages.fail, PROGRAM)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out_dir = Path(args.out)
    if args.curves == (args.split is not None):
        return _fail("give either --split (per-video figures) or --curves (training curves)", 2)
    if args.curves:
        if args.workdir is None:
            return _fail("--curves needs --workdir (a bundle has no training log)", 2)
        problem = messages.output_problem(out_dir, folder=True)
        if problem:
            return _fail(f"--out: {problem}", 2)
        return _curves(Path(args.workdir), out_dir)
    if args.videos < 1:
        return _fail("--videos must be at least 1", 2)
    problem = messages.output_problem(out_dir, folder=True)
    if problem:
        return _fail(f"--out: {problem}", 2)

    from avloc_jax.serving import figures, inference  # heavy imports after the checks

    try:
        loaded = inference.load(workdir=args.workdir, bundle=args.bundle)
        dataset, split = inference.open_split(loaded, args.data_dir, args.split)
        # Drawn into a temporary folder, moved into --out when every figure is done.
        with messages.staged_folder(out_dir) as stage:
            paths = figures.plot_split(loaded, dataset, split, args.videos, stage, notice=_note)
    except inference.InputError as err:
        return _fail(str(err), 2)
    except FileNotFoundError as err:
        return _fail(str(err), 1)
    except messages.LOAD_ERRORS as err:
        return _fail(messages.load_error(args.workdir or args.bundle, err), 1)
    except OSError as err:  # --out cannot be written
        return _fail(f"{err.filename or out_dir}: {err.strerror or err}", 1)
    for path in paths:
        print(out_dir / path.name)
    return 0


def _curves(workdir: Path, out_dir: Path) -> int:
    from avloc_jax.engine import metric_logging
    from avloc_jax.viz import plotting

    metrics_path = Workdir(workdir).metrics_path
    if not metrics_path.exists():
        return _fail(f"{metrics_path} not found: expected a workdir written by `avloc train`", 1)
    try:
        records = metric_logging.read_metrics(workdir)
    except (OSError, ValueError) as err:
        return _fail(f"{metrics_path}: expected one JSON object per line ({err})", 1)
    if not all(isinstance(r, dict) for r in records):
        return _fail(f"{metrics_path}: expected one JSON object per line", 1)
    if not any(r.get("event") == "train" for r in records):
        return _fail(f"{metrics_path} has no training events yet", 1)
    try:
        with messages.staged_folder(out_dir) as stage:
            plotting.plot_curves(stage / "curves.png", records)
    except OSError as err:
        return _fail(f"{err.filename or out_dir}: {err.strerror or err}", 1)
    print(out_dir / "curves.png")
    return 0
