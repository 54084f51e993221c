"""Predict, then plot: figures of a trained model's outputs (`avloc plot`, `avloc predict
--plot`).

Per video (`DIR/<prefix><video>.png`): the CAS p_t(c) of the ground-truth and
top-scoring classes, the reliability μ_t with the gate θ, and the ground-truth and
predicted segments. For the first video also `DIR/<prefix><video>_attention.png`, the
audio/visual cross-attention of the last stage (skipped, with a note, for models
without cross-attention). Of a dataset split, videos with ground-truth segments are
plotted first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.data.records import Dataset, Record, as_str
from avloc_jax.evaluation import predict
from avloc_jax.serving import inference
from avloc_jax.viz import figures


def choose_videos(source: Sequence[Record], count: int) -> list[int]:
    """Indices of `count` videos: those with ground-truth segments first, in split order."""
    with_segments: list[int] = []
    without: list[int] = []
    for index in range(len(source)):
        has_segments = len(np.asarray(source[index]["segment_labels"])) > 0
        (with_segments if has_segments else without).append(index)
        if len(with_segments) >= count:
            break
    return (with_segments + without)[:count]


def ground_truth(record: Record) -> list[tuple[int, float, float]]:
    """A record's segments as [(class, start s, end s)]."""
    segments = np.asarray(record["segments"], np.float64).reshape(-1, 2)
    return [
        (int(c), float(s), float(e))
        for (s, e), c in zip(segments, np.asarray(record["segment_labels"]))
    ]


def video_item(
    loaded: inference.LoadedModel,
    video_id: str,
    duration: float,
    outputs: Mapping[str, Any],
    truth: list[tuple[int, float, float]] | None,
    snippet_seconds: float | None = None,
) -> figures.VideoItem:
    """A figure's inputs: the outputs and their detections (`predict.localize_outputs`).

    `duration` is the video's real length (the figure's title and time axis). Where the
    T snippets cover another span (`snippet_seconds` x T, e.g. the 0.64-s grid of
    extracted features), the detections are localized on that span, as the predictions
    are; by default the snippets divide `duration` evenly."""
    span = snippet_seconds * len(outputs["reliability"]) if snippet_seconds else duration
    detections = predict.localize_outputs(
        outputs, span, loaded.metadata.num_classes, loaded.config.localization
    )
    return figures.VideoItem(
        video_id, float(duration), dict(outputs), detections, truth, snippet_seconds
    )


def write_figures(
    loaded: Any,
    items: Sequence[figures.VideoItem],
    out_dir: Path,
    prefix: str = "",
    notice: inference.Notice = inference.stderr_notice,
) -> list[Path]:
    """`figures.write_video_figures` with the model's class names and gate θ; a note
    when the first video has no attention map to draw."""
    if items and not (loaded.has_cross_attention and figures.has_attention(items[0])):
        notice(
            f"note: no attention map: the model's fusion is {loaded.config.model.fusion!r}, "
            "not cross_attention"
        )
    return figures.write_video_figures(
        items,
        out_dir,
        class_names=loaded.metadata.class_names,
        reliability_threshold=float(loaded.config.eval.reliability_threshold),
        prefix=prefix,
    )


def plot_split(
    loaded: inference.LoadedModel,
    dataset: Dataset,
    split: str,
    count: int,
    out_dir: Path,
    notice: inference.Notice = inference.stderr_notice,
) -> list[Path]:
    """Figures of `count` videos of a dataset split (see the module doc), as
    `<split>_<video>.png`; the chosen videos go through the predict function together."""
    inference.check_compatible(loaded.metadata, dataset.metadata)
    source = dataset.split(split)
    records = [source[i] for i in choose_videos(source, count)]
    outputs = inference.predict_records(loaded, records, loaded.has_cross_attention)
    items = [
        video_item(loaded, as_str(r["video_id"]), float(r["duration"]), video, ground_truth(r))
        for r, video in zip(records, outputs)
    ]
    return write_figures(loaded, items, out_dir, prefix=f"{split}_", notice=notice)


def plot_prediction(
    loaded: inference.LoadedModel,
    details: Mapping[str, Any],
    out_dir: Path,
    notice: inference.Notice = inference.stderr_notice,
) -> list[Path]:
    """Figures of one video predicted from feature files (`inference.predict_files`'s
    details); there is no ground truth."""
    item = video_item(loaded, details["video_id"], details["duration"], details["outputs"], None)
    return write_figures(loaded, [item], out_dir, notice=notice)
