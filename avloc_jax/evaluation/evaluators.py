"""Evaluators: a split's metrics and files from the predict function's per-video outputs.

The protocol (docs/evaluation.md, "Evaluators"):

* an evaluator is a class registered by name (`register`, `EVALUATORS`; its name is a
  choice of `config.evals`) that declares the one config section it reads,
  `config_section` ("localization", "eval", or "" for none), and is built as
  `cls(predict_fn, section)`: it never sees the rest of the config;
* `predict_fn(params, source) -> {dataset index: VideoOutputs}` is the predict function
  of `avloc_jax.evaluation.predict` with its batching and mesh bound (evaluators of one
  split share one prediction pass);
* `run(params, source, metadata, subset)` returns an `EvalResult`: the metrics
  {name: number} and the artefacts {name: `Artefact`}, each a payload with the writer
  of its format (`predictions_artefact`: data/activitynet_json.py's; `json_artefact`;
  `figure_artefact`). The engine writes artefact NAME of split S as
  results/S_NAME.json (or .png for a figure) and the metrics as results/S_metrics.json.

`config.evals` names the evaluators to run; () means the dataset task's standard one
(`evaluator_names`). `config.eval.select` names the validation metric that selects the
best checkpoint; "" means the first evaluator's `default_select`. A new dataset's metric
is one more registered evaluator.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from avloc_jax.common import io
from avloc_jax.data import activitynet_json
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


# ----------------------------------------------------------------------------- the result


@dataclasses.dataclass(frozen=True)
class Artefact:
    """A file an evaluation produces: `write(path, payload)` writes `payload` at
    results/<split>_<name><suffix> (atomically: the writers write a temporary file,
    then rename it)."""

    payload: Any
    write: Callable[[Path, Any], object]
    suffix: str = ".json"


def json_artefact(payload: Any) -> Artefact:
    """A JSON payload, written indented (common/io.py)."""
    return Artefact(payload, io.atomic_write_json)


def predictions_artefact(predictions: Mapping[str, Any]) -> Artefact:
    """Detections in the ActivityNet prediction format, checked and written by the format's
    one home (data/activitynet_json.py)."""
    return Artefact(predictions, activitynet_json.write_predictions)


def _write_figure(path: Path, figure: Any) -> Path:
    return io.atomic_write(path, lambda tmp: figure.savefig(tmp, format="png"))


def figure_artefact(figure: Any) -> Artefact:
    """A matplotlib Figure, written as PNG."""
    return Artefact(figure, _write_figure, ".png")


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """What an evaluator's `run` returns: metrics {name: number} (metrics.jsonl, TensorBoard,
    results/<split>_metrics.json, checkpoint selection) and artefacts {name: Artefact}."""

    metrics: Mapping[str, float]
    artefacts: Mapping[str, Artefact] = dataclasses.field(default_factory=dict)

    @staticmethod
    def merge(results: Mapping[str, EvalResult]) -> EvalResult:
        """The results of several evaluators {evaluator name: result} as one; a metric or
        artefact name two of them use is an error naming the evaluator."""
        metrics: dict[str, float] = {}
        artefacts: dict[str, Artefact] = {}
        for name, result in results.items():
            clash = (set(metrics) & set(result.metrics)) | (set(artefacts) & set(result.artefacts))
            if clash:
                raise ValueError(f"evaluator {name!r} repeats the names {sorted(clash)}")
            metrics.update(result.metrics)
            artefacts.update(result.artefacts)
        return EvalResult(metrics, artefacts)


# ----------------------------------------------------------------------------- evaluators


class Evaluator:
    """Base of the evaluators: the predict function and the evaluator's config section."""

    # The config group it is given (`config[config_section]`); "" for none (None is given).
    config_section: ClassVar[str] = ""
    # The metric that selects checkpoints when `config.eval.select` is "".
    default_select: ClassVar[str] = ""

    def __init__(self, predict_fn: PredictFn, config: Any = None):
        self.predict_fn = predict_fn
        self.config = config

    def run(
        self, params: Any, source: Sequence[Record], metadata: DatasetMetadata, subset: str
    ) -> EvalResult:
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
    (ActivityNet prediction format) are the `detections` artefact. Section: localization."""

    config_section = "localization"
    default_select = "average_mAP"

    def run(self, params, source, metadata, subset):
        outputs = self.predict_fn(params, source)
        metrics, predictions = detection_split_metrics(
            outputs, source, metadata, self.config, subset
        )
        return EvalResult(metrics, {"detections": predictions_artefact(predictions)})


@register("ave")
class AVESegmentAccuracy(Evaluator):
    """AVE: per-snippet accuracy, gated by reliability (`accuracy`) and ungated.
    Section: eval (its reliability_threshold)."""

    config_section = "eval"
    default_select = "accuracy"

    def run(self, params, source, metadata, subset):
        outputs = self.predict_fn(params, source)
        return EvalResult(
            ave_split_metrics(
                outputs, source, metadata.num_classes, self.config.reliability_threshold
            )
        )


# ----------------------------------------------------------------------------- running them


def evaluator_names(evals: Sequence[str], task: str) -> tuple[str, ...]:
    """`config.evals`, or the task's standard evaluator when it is empty. The names are
    the schema's to check (avloc_jax/schema.py: `evals` choices are `EVALUATORS`)."""
    names = tuple(evals)
    if not names:
        names = ("ave",) if task == TASK_AVE else ("detection",)
    return names


def config_sections(names: Sequence[str]) -> tuple[str, ...]:
    """The config sections the evaluators `names` read, each once."""
    return tuple(dict.fromkeys(s for n in names if (s := EVALUATORS[n].config_section)))


def build_evaluators(
    predict_fn: PredictFn, names: Sequence[str], sections: Mapping[str, Any]
) -> dict[str, Evaluator]:
    """{name: evaluator}, each given its own section of `sections` ({section name: the
    config group}, those of `config_sections(names)`); they share one prediction pass
    per split."""
    shared = _last_call_cached(predict_fn)
    built = {}
    for name in names:
        section = EVALUATORS[name].config_section
        built[name] = EVALUATORS[name](shared, sections[section] if section else None)
    return built


def selection_metric(select: str, evaluators: Mapping[str, Any]) -> str:
    """`select` (`config.eval.select`), or the first evaluator's `default_select`;
    `evaluators`: {name: evaluator or evaluator class}."""
    if select:
        return select
    name, first = next(iter(evaluators.items()))
    if not first.default_select:
        raise ValueError(
            f"config.eval.select is empty and evaluator {name!r} has no "
            "default_select: name the metric that selects the checkpoint"
        )
    return first.default_select


def check_selection(select: str, metrics: Mapping[str, Any], names: Sequence[str]) -> float:
    """The value of the selection metric, or a clear error if no evaluator produced it."""
    if select not in metrics:
        raise ValueError(
            f"config.eval.select={select!r} is not a metric of the configured evaluators "
            f"{tuple(names)}; they produce {sorted(metrics)}"
        )
    return float(metrics[select])


def run_evaluators(
    evaluators: Mapping[str, Evaluator],
    params: Any,
    source: Sequence[Record],
    metadata: DatasetMetadata,
    subset: str,
) -> EvalResult:
    """Every evaluator's `run`, merged into one `EvalResult` (`EvalResult.merge`)."""
    results = {}
    for name, evaluator in evaluators.items():
        result = evaluator.run(params, source, metadata, subset)
        if not isinstance(result, EvalResult):
            raise TypeError(
                f"evaluator {name!r} returned {type(result).__name__}; expected an EvalResult"
            )
        results[name] = result
    return EvalResult.merge(results)


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
