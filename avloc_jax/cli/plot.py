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
import dataclasses
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

PROGRAM = "avloc plot"


@dataclasses.dataclass
class VideoItem:
    """What one video's figure needs."""

    video_id: str
    duration: float  # seconds
    outputs: dict[
        str, Any
    ]  # inference.predict_video: posterior [T, C+1], reliability [T], video_scores [C], ...
    detections: list  # [(class, score, start s, end s)]
    ground_truth: list | None  # [(class, start s, end s)], None for new videos


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:120] or "video"


def write_video_figures(
    loaded: Any, items: Sequence[VideoItem], out_dir: Path, prefix: str = ""
) -> list[Path]:
    """One figure per item; the attention map of the first item's last stage."""
    from avloc_jax.viz import plotting

    paths = []
    for index, item in enumerate(items):
        stem = _safe_name(prefix + item.video_id)
        paths.append(
            plotting.plot_video(
                out_dir / f"{stem}.png",
                video_id=item.video_id,
                duration=item.duration,
                posterior=item.outputs["posterior"],
                reliability=item.outputs["reliability"],
                video_scores=item.outputs["video_scores"],
                class_names=loaded.metadata.class_names,
                detections=item.detections,
                ground_truth=item.ground_truth,
                reliability_threshold=float(loaded.config.eval.reliability_threshold),
            )
        )
        if index == 0:
            attention = item.outputs.get("attention_logits") or {}
            if not loaded.has_cross_attention or not attention:
                print(
                    f"{PROGRAM}: note: no attention map: the model's fusion is {loaded.config.model.fusion!r}, "
                    "not cross_attention",
                    file=sys.stderr,
                )
            else:
                stage = max(attention)
                paths.append(
                    plotting.plot_attention(
                        out_dir / f"{stem}_attention.png",
                        video_id=item.video_id,
                        duration=item.duration,
                        logits=attention[stage],
                        stage=stage,
                        ground_truth=item.ground_truth,
                    )
                )
    return paths


def choose_videos(source: Sequence[dict], count: int) -> list[int]:
    """Indices of `count` videos: those with ground-truth segments first, in split order."""
    with_segments, without = [], []
    for index in range(len(source)):
        (with_segments if len(np.asarray(source[index]["segment_labels"])) else without).append(
            index
        )
        if len(with_segments) >= count:
            break
    return (with_segments + without)[:count]


def plot_split(loaded: Any, dataset: Any, split: str, count: int, out_dir: Path) -> list[Path]:
    """Figures of `count` videos of a dataset split (see the module doc)."""
    from avloc_jax.data.records import as_str
    from avloc_jax.serving import inference

    inference.check_compatible(loaded.metadata, dataset.metadata)
    source = dataset.split(split)
    items = []
    for rank, index in enumerate(choose_videos(source, count)):
        record = source[index]
        duration = float(record["duration"])
        outputs = inference.predict_video(
            loaded,
            np.asarray(record["visual"]),
            np.asarray(record["audio"]),
            with_attention=rank == 0 and loaded.has_cross_attention,
        )
        segments = np.asarray(record["segments"], np.float64).reshape(-1, 2)
        ground_truth = [
            (int(c), float(s), float(e))
            for (s, e), c in zip(segments, np.asarray(record["segment_labels"]))
        ]
        items.append(
            VideoItem(
                video_id=as_str(record["video_id"]),
                duration=duration,
                outputs=outputs,
                detections=inference.localize_video(loaded, outputs, duration),
                ground_truth=ground_truth,
            )
        )
    return write_video_figures(loaded, items, out_dir, prefix=f"{split}_")


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


def _fail(message: str, code: int) -> int:
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    return code


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out_dir = Path(args.out)
    if args.curves == (args.split is not None):
        return _fail("give either --split (per-video figures) or --curves (training curves)", 2)
    if args.curves:
        if args.workdir is None:
            return _fail("--curves needs --workdir (a bundle has no training log)", 2)
        return _curves(Path(args.workdir), out_dir)
    if args.videos < 1:
        return _fail("--videos must be at least 1", 2)

    from avloc_jax.serving import inference

    try:
        loaded = inference.load(workdir=args.workdir, bundle=args.bundle)
        dataset = inference.load_split_dataset(loaded, args.data_dir)
        split = inference.resolve_split(dataset.metadata, args.split)
        try:
            dataset.split(split)
        except KeyError as err:
            return _fail(str(err.args[0]), 2)
        paths = plot_split(loaded, dataset, split, args.videos, out_dir)
    except inference.InputError as err:
        return _fail(str(err), 2)
    except FileNotFoundError as err:
        return _fail(str(err), 1)
    for path in paths:
        print(path)
    return 0


def _curves(workdir: Path, out_dir: Path) -> int:
    from avloc_jax.engine import metric_logging
    from avloc_jax.viz import plotting

    if not (workdir / "metrics.jsonl").exists():
        return _fail(
            f"{workdir / 'metrics.jsonl'} not found: expected a workdir written by `avloc train`", 1
        )
    records = metric_logging.read_metrics(workdir)
    if not any(r.get("event") == "train" for r in records):
        return _fail(f"{workdir / 'metrics.jsonl'} has no training events yet", 1)
    print(plotting.plot_curves(out_dir / "curves.png", records))
    return 0
