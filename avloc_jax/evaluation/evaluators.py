"""A split's metrics from the predict function's per-video outputs.

The outputs are those of `avloc_jax.evaluation.predict` ({dataset index: VideoOutputs}).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from avloc_jax.data.records import TASK_AVE, DatasetMetadata, Record, as_str, ground_truth_json
from avloc_jax.evaluation import ave_metrics, detection_eval, localization
from avloc_jax.evaluation.predict import VideoOutputs


def ave_split_metrics(
    outputs: dict[int, VideoOutputs],
    source: Sequence[Record],
    num_classes: int,
    reliability_threshold: float,
) -> dict[str, float]:
    """AVE protocol: accuracy over every snippet of the split, background included."""
    indices = sorted(outputs)
    scores = np.stack([outputs[i]["video_scores"] for i in indices])
    lengths = [len(outputs[i]["reliability"]) for i in indices]
    max_len = max(lengths)
    mask = np.arange(max_len)[None, :] < np.asarray(lengths)[:, None]
    pad = lambda x, fill: np.pad(
        x, [(0, max_len - len(x))] + [(0, 0)] * (x.ndim - 1), constant_values=fill
    )  # noqa: E731
    reliability = np.stack([pad(outputs[i]["reliability"], 0.0) for i in indices])
    posterior = np.stack([pad(outputs[i]["posterior"], 0.0) for i in indices])
    target = np.stack([pad(np.asarray(source[i]["snippet_labels"]), num_classes) for i in indices])
    gated = ave_metrics.gated_snippet_labels(scores, reliability, reliability_threshold)
    ungated = ave_metrics.ungated_snippet_labels(posterior)
    return {
        "accuracy": float(ave_metrics.segment_accuracy(gated, target, mask)),
        "accuracy_ungated": float(ave_metrics.segment_accuracy(ungated, target, mask)),
        "num_snippets": int(mask.sum()),
        "video_top1": _video_top1(outputs, source),
    }


def _video_top1(outputs: dict[int, VideoOutputs], source: Sequence[Record]) -> float:
    """Share of labelled videos whose top-scored class is one of their labels."""
    hits, count = 0, 0
    for index, video in outputs.items():
        labels = np.asarray(source[index]["labels"])
        if labels.sum() > 0:
            count += 1
            hits += bool(labels[int(np.argmax(video["video_scores"]))] > 0)
    return hits / max(count, 1)


def detections(
    outputs: dict[int, VideoOutputs],
    source: Sequence[Record],
    class_names: Sequence[str],
    localization_config: Any,
) -> dict:
    """Detections of every video in the official ActivityNet prediction format."""
    num_classes = len(class_names)
    per_video = {}
    for index in sorted(outputs):
        record, video = source[index], outputs[index]
        per_video[as_str(record["video_id"])] = localization.localize(
            video["posterior"][:, :num_classes],
            video["video_scores"],
            float(record["duration"]),
            localization_config,
        )
    return localization.detections_to_json(per_video, class_names)


def detection_split_metrics(
    outputs: dict[int, VideoOutputs],
    source: Sequence[Record],
    metadata: DatasetMetadata,
    localization_config: Any,
    subset: str,
) -> tuple[dict[str, float], dict]:
    """Detection mAP at the dataset's tIoU thresholds; returns (metrics, prediction JSON)."""
    predictions = detections(outputs, source, metadata.class_names, localization_config)
    ground_truth = ground_truth_json(
        [source[i] for i in sorted(outputs)], metadata.class_names, subset
    )
    result = detection_eval.evaluate_detections(
        ground_truth, predictions, metadata.tiou_thresholds, subset=subset
    )
    metrics = {"average_mAP": float(result["average_mAP"])}
    for threshold, value in zip(result["tiou_thresholds"], result["mAP"]):
        metrics[f"mAP@{float(threshold):.2f}"] = float(value)
    metrics["video_top1"] = _video_top1(outputs, source)
    return metrics, predictions


def split_metrics(
    outputs: dict[int, VideoOutputs],
    source: Sequence[Record],
    metadata: DatasetMetadata,
    config: Any,
    subset: str,
) -> tuple[dict[str, float], dict | None]:
    """The protocol's metrics for a split, plus detections for untrimmed datasets."""
    if metadata.task == TASK_AVE:
        return ave_split_metrics(
            outputs, source, metadata.num_classes, config.eval.reliability_threshold
        ), None
    return detection_split_metrics(outputs, source, metadata, config.localization, subset)


def selection_metric_name(metadata: DatasetMetadata) -> str:
    """The validation metric that picks the best checkpoint."""
    return "accuracy" if metadata.task == TASK_AVE else "average_mAP"
