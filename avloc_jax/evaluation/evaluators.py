"""Sharded inference over a split, and the split's metrics.

Inference pads the last batch and masks it (`example_mask`), so every video is scored
exactly once whatever the batch size and device count. Outputs come back per video,
trimmed to the video's length:

  ``video_scores`` [C]    softmax of the top-k pooled CAS,
  ``posterior``   [T, C+1] the open-set posterior p_t (background last),
  ``reliability`` [T]     μ_t.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import numpy as np

from avloc_jax import losses
from avloc_jax.common import parallel, progress
from avloc_jax.data import input_pipeline
from avloc_jax.data.records import TASK_AVE, DatasetMetadata, Record, as_str, ground_truth_json
from avloc_jax.evaluation import ave_metrics, detection_eval, localization

VideoOutputs = dict[str, np.ndarray]


def make_eval_step(model: Any, topk_ratio: float, mesh: jax.sharding.Mesh) -> Callable:
    """A jitted forward pass: (params, global batch) -> replicated per-video outputs."""

    def eval_step(params, batch):
        outputs = model.apply(
            {"params": params}, batch["visual"], batch["audio"], batch["mask"], train=False
        )
        return {
            "video_scores": losses.video_scores(
                outputs["class_logits"], batch["mask"].astype(bool), topk_ratio
            ),
            "posterior": outputs["posterior"],
            "reliability": outputs["reliability"],
            "index": batch["index"],
            "length": batch["mask"].sum(axis=1),
        }

    # Outputs are replicated so that every process can read every video's result
    # (metrics are then computed identically on all processes).
    return jax.jit(
        eval_step,
        in_shardings=(parallel.replicated(mesh), parallel.batch_sharded(mesh)),
        out_shardings=parallel.replicated(mesh),
    )


def iterate_outputs(
    eval_step: Callable,
    params: Any,
    source: Sequence[Record],
    *,
    batch_size: int,
    buckets: Sequence[int] | None,
    mesh: jax.sharding.Mesh,
) -> Iterator[tuple[int, VideoOutputs]]:
    """Yields (dataset index, outputs) for every video of `source` exactly once."""
    parallel.local_batch_size(batch_size, "eval.batch_size")  # checks divisibility
    sharding = parallel.batch_sharded(mesh)
    for batch, indices in input_pipeline.eval_batches(
        source,
        batch_size=batch_size,  # global; each process gets its slice of every batch
        buckets=buckets or None,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    ):
        batch = {
            k: v
            for k, v in batch.items()
            if k in ("visual", "audio", "mask", "labels", "example_mask")
        }
        batch["index"] = np.asarray(indices, np.int32)
        out = jax.device_get(eval_step(params, parallel.to_global(batch, sharding)))
        for row, index in enumerate(out["index"]):
            if index < 0:
                continue
            length = int(out["length"][row])
            yield (
                int(index),
                {
                    "video_scores": out["video_scores"][row],
                    "posterior": out["posterior"][row, :length],
                    "reliability": out["reliability"][row, :length],
                },
            )


def collect_outputs(
    eval_step: Callable, params: Any, source: Sequence[Record], **kwargs
) -> dict[int, VideoOutputs]:
    """{dataset index: outputs} for every video of `source` (a progress bar on a TTY)."""
    outputs: dict[int, VideoOutputs] = {}
    enabled = None if parallel.is_main_process() else False
    with progress.ProgressBar(
        len(source), desc="eval", unit="video", enabled=enabled, leave=False
    ) as bar:
        for index, video in iterate_outputs(eval_step, params, source, **kwargs):
            if index in outputs:
                raise RuntimeError(f"video index {index} was evaluated twice")
            outputs[index] = video
            bar.update(1)
    return outputs


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
