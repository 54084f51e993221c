"""Evaluators: a split's metrics from the predict function's per-video outputs.

An evaluator is built as `Evaluator(predict_fn, config)`, where
`predict_fn(params, source) -> {dataset index: VideoOutputs}` is the predict function
of `avloc_jax.evaluation.predict` with its batching and mesh bound. `run(params, source,
metadata, subset)` returns a flat {metric name: number} dict; what it wants written
besides (the detections JSON) it leaves in `artifacts`, {name: JSON payload}, which the
engine writes as results/<split>_<name>.json.

`config.evals` names the evaluators to run (`EVALUATORS`, extended by `register`); ()
means the dataset task's standard one. `config.eval.select` names the validation
metric that selects the best checkpoint; "" means the first evaluator's
`default_select`. A new dataset's metric is one more registered evaluator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from avloc_jax.data.records import TASK_AVE, DatasetMetadata, Record, as_str, ground_truth_json
from avloc_jax.evaluation import ave_metrics, detection_eval, predict
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

    def pad(x: np.ndarray, fill: float) -> np.ndarray:
        return np.pad(x, [(0, max_len - len(x))] + [(0, 0)] * (x.ndim - 1), constant_values=fill)

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
    videos = {
        as_str(source[i]["video_id"]): (outputs[i], float(source[i]["duration"]))
        for i in sorted(outputs)
    }
    return predict.detections_json(videos, class_names, localization_config)


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


PredictFn = Callable[[Any, Sequence[Record]], dict[int, VideoOutputs]]


class Evaluator:
    """Base of the evaluators: holds the predict function and the config."""

    # The metric that selects checkpoints when `config.eval.select` is "".
    default_select: ClassVar[str] = ""

    def __init__(self, predict_fn: PredictFn, config: Any):
        self.predict_fn = predict_fn
        self.config = config
        self.artifacts: dict[str, Any] = {}  # of the latest run

    def run(
        self, params: Any, source: Sequence[Record], metadata: DatasetMetadata, subset: str
    ) -> dict[str, float]:
        raise NotImplementedError(f"{type(self).__name__} must define run()")


EVALUATORS: dict[str, type[Evaluator]] = {}


def register(name: str) -> Callable[[type[Evaluator]], type[Evaluator]]:
    """Class decorator: makes an evaluator available as `config.evals = (name,)`."""

    def add(cls: type[Evaluator]) -> type[Evaluator]:
        EVALUATORS[name] = cls
        return cls

    return add


@register("detection")
class DetectionMAP(Evaluator):
    """Untrimmed datasets: detection mAP at the dataset's tIoU thresholds; the detections
    (official ActivityNet prediction format) are the `detections` artifact."""

    default_select = "average_mAP"

    def run(self, params, source, metadata, subset):
        outputs = self.predict_fn(params, source)
        metrics, predictions = detection_split_metrics(
            outputs, source, metadata, self.config.localization, subset
        )
        self.artifacts = {"detections": predictions}
        return metrics


@register("ave")
class AVESegmentAccuracy(Evaluator):
    """AVE: per-snippet accuracy, gated by reliability (`accuracy`) and ungated."""

    default_select = "accuracy"

    def run(self, params, source, metadata, subset):
        outputs = self.predict_fn(params, source)
        self.artifacts = {}
        return ave_split_metrics(
            outputs, source, metadata.num_classes, self.config.eval.reliability_threshold
        )


def evaluator_names(config: Any, metadata: DatasetMetadata) -> tuple[str, ...]:
    """`config.evals`, or the task's standard evaluator when it is empty."""
    names = tuple(config.evals)
    if not names:
        names = ("ave",) if metadata.task == TASK_AVE else ("detection",)
    unknown = [n for n in names if n not in EVALUATORS]
    if unknown:
        raise ValueError(
            f"config.evals: unknown evaluator(s) {unknown}; known: {sorted(EVALUATORS)}"
        )
    return names


def build_evaluators(
    predict_fn: PredictFn, config: Any, metadata: DatasetMetadata
) -> dict[str, Evaluator]:
    """{name: evaluator} of the config; they share one prediction pass per split."""
    shared = _last_call_cached(predict_fn)
    return {name: EVALUATORS[name](shared, config) for name in evaluator_names(config, metadata)}


def selection_metric(config: Any, evaluators: dict[str, Evaluator]) -> str:
    """`config.eval.select`, or the first evaluator's `default_select`."""
    select = str(config.eval.select)
    if select:
        return select
    first = next(iter(evaluators.values()))
    if not first.default_select:
        raise ValueError(
            f"config.eval.select is empty and evaluator {next(iter(evaluators))!r} has no "
            "default_select: name the metric that selects the checkpoint"
        )
    return first.default_select


def check_selection(
    select: str, metrics: dict[str, Any], evaluators: dict[str, Evaluator]
) -> float:
    """The value of the selection metric, or a clear error if no evaluator produced it."""
    if select not in metrics:
        raise ValueError(
            f"config.eval.select={select!r} is not a metric of the configured evaluators "
            f"{tuple(evaluators)}; they produce {sorted(metrics)}"
        )
    return float(metrics[select])


def run_evaluators(
    evaluators: dict[str, Evaluator],
    params: Any,
    source: Sequence[Record],
    metadata: DatasetMetadata,
    subset: str,
) -> tuple[dict[str, float], dict[str, Any]]:
    """(metrics, artifacts) of every evaluator, merged; a name two of them use is an error."""
    metrics: dict[str, float] = {}
    artifacts: dict[str, Any] = {}
    for name, evaluator in evaluators.items():
        for target, produced in (
            (metrics, evaluator.run(params, source, metadata, subset)),
            (artifacts, evaluator.artifacts),
        ):
            clash = set(target) & set(produced)
            if clash:
                raise ValueError(f"evaluator {name!r} repeats the names {sorted(clash)}")
            target.update(produced)
    return metrics, artifacts


def _last_call_cached(predict_fn: PredictFn) -> PredictFn:
    """`predict_fn` remembering its latest call, so that several evaluators of one split
    (same params, same source objects) predict once."""
    last: list[Any] = []

    def cached(params: Any, source: Sequence[Record]) -> dict[int, VideoOutputs]:
        if last and last[0] is params and last[1] is source:
            return last[2]
        outputs = predict_fn(params, source)
        last[:] = [params, source, outputs]
        return outputs

    return cached
