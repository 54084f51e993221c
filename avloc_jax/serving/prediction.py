"""Running a loaded model: input checks, the forward pass, and its outputs as JSON.

Feature files are checked (`load_features`, `prepare_inputs`: an `InputError` names the
file and what was expected), videos are run through the one predict function of
`evaluation.predict` (batched, sharded, padded to a multiple of `PAD_MULTIPLE` snippets and
masked), and the outputs become the official ActivityNet prediction JSON
(`predictions_json`; AVE-style models add per-snippet labels).

Shapes: T = visual snippets of one video, Dv / Da = feature sizes, C = classes,
H = attention heads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np

from avloc_jax.data import loading
from avloc_jax.data.records import Dataset, DatasetMetadata, resample_time
from avloc_jax.serving.model_loading import InputError, LoadedModel, Notice, stderr_notice

BACKGROUND = "background"

# Inputs are padded to a multiple of this many snippets before the jitted forward pass,
# so that videos of similar lengths share one compilation. Padded snippets are masked
# and cannot change the outputs at real snippets (tests/test_models.py).
PAD_MULTIPLE = 32

# ----------------------------------------------------------------------------- inputs


def load_features(path: Path | str, what: str, expected_dim: int) -> np.ndarray:
    """A feature file [T, D] as float32, or an `InputError` naming the file and the problem.

    Args:
      path: a .npy file (NumPy `np.save` format; no pickles).
      what: "visual" or "audio", for messages.
      expected_dim: D the model was trained with.
    """
    path = Path(path)
    expected = (
        f"{'an' if what[:1] in 'aeiou' else 'a'} {what} feature array [T, {expected_dim}] "
        "(snippets x features) saved with np.save"
    )
    if not path.exists():
        raise InputError(f"{what} features file {path} does not exist; expected {expected}")
    if path.is_dir():
        raise InputError(f"{what} features file {path} is a directory; expected {expected}")
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise InputError(
            f"{path}: cannot read it as a .npy array ({err}); expected {expected}"
        ) from None
    if not isinstance(array, np.ndarray):  # an .npz archive
        raise InputError(f"{path}: is an .npz archive, not a single array; expected {expected}")
    if array.dtype.kind not in "fiu":
        raise InputError(f"{path}: has dtype {array.dtype}; expected {expected}")
    if array.ndim != 2:
        raise InputError(f"{path}: has shape {array.shape} ({array.ndim}-D); expected {expected}")
    if array.shape[0] == 0:
        raise InputError(
            f"{path}: has zero snippets (shape {array.shape}); expected {expected} with T >= 1"
        )
    if array.shape[1] != expected_dim:
        raise InputError(
            f"{path}: {what} features have dimension {array.shape[1]}, but the model expects "
            f"{expected_dim}; expected {expected}"
        )
    array = array.astype(np.float32)
    bad = ~np.isfinite(array)
    if bad.any():
        t, d = np.argwhere(bad)[0]
        raise InputError(
            f"{path}: contains {int(bad.sum())} NaN/Inf values "
            f"(first at snippet {t}, feature {d}); "
            f"expected {expected} with finite values"
        )
    return array


def prepare_inputs(
    visual_path: Path | str,
    audio_path: Path | str,
    metadata: DatasetMetadata,
    notice: Notice = stderr_notice,
) -> tuple[np.ndarray, np.ndarray]:
    """Checked (visual [T, Dv], audio [T, Da]); audio is resampled to T snippets if needed."""
    visual = load_features(visual_path, "visual", metadata.visual_dim)
    audio = load_features(audio_path, "audio", metadata.audio_dim)
    if len(audio) != len(visual):
        notice(
            f"note: {audio_path} has {len(audio)} audio snippets but {visual_path} has "
            f"{len(visual)} visual snippets; the audio is linearly resampled to "
            f"{len(visual)} snippets"
        )
        audio = resample_time(audio, len(visual))
    return visual, audio


# ----------------------------------------------------------------------------- forward


def _predict_fn(
    loaded: LoadedModel, extra_outputs: tuple[str, ...]
) -> tuple[Callable, jax.sharding.Mesh]:
    """(predict function, mesh) of `loaded`: `evaluation.predict.make_eval_step`, cached
    on `loaded` so that repeated calls reuse its compilations (one per padded shape)."""
    key = ("predict", extra_outputs)
    if key not in loaded._forward_cache:
        from avloc_jax.common import parallel
        from avloc_jax.evaluation import predict

        mesh = parallel.make_mesh()
        step = predict.make_eval_step(
            loaded.model,
            float(loaded.config.loss.topk_ratio),
            mesh,
            extra_outputs=extra_outputs,
        )
        loaded._forward_cache[key] = (step, mesh)
    return loaded._forward_cache[key]


def serving_batch_size(num_videos: int, max_batch_size: int) -> int:
    """The global batch for `num_videos` videos: no more rows than needed (at most
    `max_batch_size`), rounded up to a multiple of the device count (the batch is sharded
    over every device; the extra rows are masked padding)."""
    devices = jax.device_count()
    rows = max(1, min(num_videos, max_batch_size))
    return int(math.ceil(rows / devices) * devices)


def predict_records(
    loaded: LoadedModel, records: Sequence[Mapping[str, Any]], with_attention: bool = False
) -> list[dict[str, Any]]:
    """The model's outputs on each of `records`, in order, with the one predict function
    (`evaluation.predict`): batched, sharded, each video padded to a multiple of
    `PAD_MULTIPLE` snippets and masked.

    Args:
      records: visual [T, Dv] and audio [T, Da] (already at the visual rate) each;
        other fields are ignored.
      with_attention: also return the cross-attention logits of every stage.

    Returns per video, NumPy: video_scores [C], posterior [T, C+1] (background last),
    reliability μ [T], class_logits [T, C], and attention_logits {stage: [H, T, T]}
    (audio snippet τ x visual snippet t; empty unless requested and the fusion is
    cross-attention).
    """
    from avloc_jax.evaluation import predict

    labels = np.zeros(loaded.metadata.num_classes, np.float32)  # unused by the forward pass
    source = [{"visual": r["visual"], "audio": r["audio"], "labels": labels} for r in records]
    extra = ("class_logits",) + (("attention_logits",) if with_attention else ())
    step, mesh = _predict_fn(loaded, extra)
    outputs = predict.collect_outputs(
        step,
        loaded.params,
        source,
        batch_size=serving_batch_size(len(source), int(loaded.config.eval.batch_size)),
        buckets=predict.multiple_buckets([len(r["visual"]) for r in source], PAD_MULTIPLE),
        mesh=mesh,
        show_progress=False,
    )
    return [{"attention_logits": {}, **outputs[i]} for i in range(len(source))]


def predict_video(
    loaded: LoadedModel, visual: np.ndarray, audio: np.ndarray, with_attention: bool = False
) -> dict[str, Any]:
    """The model's outputs on one video: visual [T, Dv], audio [T, Da] (already at the
    visual rate), trimmed to its T snippets; see `predict_records`."""
    return predict_records(loaded, [{"visual": visual, "audio": audio}], with_attention)[0]


# ----------------------------------------------------------------------------- outputs


def snippet_labels(
    loaded: LoadedModel, video_scores: np.ndarray, reliability: np.ndarray
) -> list[str]:
    """AVE-style labels of one video's snippets: the video's top class where
    μ_t >= eval.reliability_threshold, 'background' elsewhere. video_scores [C], μ [T]."""
    from avloc_jax.evaluation import ave_metrics

    labels = ave_metrics.gated_snippet_labels(
        np.asarray(video_scores)[None],
        np.asarray(reliability)[None],
        float(loaded.config.eval.reliability_threshold),
    )[0]
    names = list(loaded.metadata.class_names)
    return [names[int(c)] if int(c) < len(names) else BACKGROUND for c in labels]


def video_duration(loaded: LoadedModel, num_snippets: int, duration: float | None) -> float:
    """`duration` if given, else T x seconds_per_snippet (an `InputError` if unknown)."""
    if duration is not None:
        if not (math.isfinite(duration) and duration > 0):
            raise InputError(f"--duration must be a positive number of seconds, got {duration}")
        return float(duration)
    if not loaded.seconds_per_snippet:
        raise InputError(
            "the model's metadata does not say how long a snippet is; "
            "pass --duration SECONDS (the video's length)"
        )
    return float(num_snippets * loaded.seconds_per_snippet)


def predictions_json(
    loaded: LoadedModel, videos: Mapping[str, tuple[Mapping[str, Any], float]]
) -> dict[str, Any]:
    """The official ActivityNet prediction JSON ({version, results, external_data}) of
    {video id: (outputs, duration s)}, plus ``snippet_labels`` {video id: [label per
    snippet]} for AVE-style models."""
    from avloc_jax.evaluation import predict

    payload = predict.detections_json(
        videos, loaded.metadata.class_names, loaded.config.localization
    )
    if loaded.is_ave:
        payload["snippet_labels"] = {
            video_id: snippet_labels(loaded, outputs["video_scores"], outputs["reliability"])
            for video_id, (outputs, _) in videos.items()
        }
    return payload


def predict_files(
    loaded: LoadedModel,
    visual_path: Path | str,
    audio_path: Path | str,
    duration: float | None = None,
    video_id: str | None = None,
    notice: Notice = stderr_notice,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Runs the model on one video's feature files.

    Returns (prediction JSON, details) where details has the video id, duration and the
    per-snippet outputs with the attention logits (for plots).
    """
    visual, audio = prepare_inputs(visual_path, audio_path, loaded.metadata, notice)
    seconds = video_duration(loaded, len(visual), duration)
    video_id = video_id or Path(visual_path).stem
    outputs = predict_video(loaded, visual, audio, with_attention=loaded.has_cross_attention)
    details = {"video_id": video_id, "duration": seconds, "outputs": outputs}
    return predictions_json(loaded, {video_id: (outputs, seconds)}), details


def predict_split(
    loaded: LoadedModel, dataset: Dataset, split: str
) -> tuple[dict[str, Any], dict[int, dict]]:
    """Runs the model on a dataset split with the engine's sharded, batched evaluation.

    Returns (prediction JSON, per-video outputs by dataset index).
    """
    from avloc_jax.data.records import as_str
    from avloc_jax.evaluation import predict

    check_compatible(loaded.metadata, dataset.metadata)
    source = dataset.split(split)
    step, mesh = _predict_fn(loaded, ())
    outputs = predict.collect_outputs(
        step,
        loaded.params,
        source,
        batch_size=int(loaded.config.eval.batch_size),
        buckets=tuple(loaded.config.data.eval_buckets),
        mesh=mesh,
    )
    videos = {
        as_str(source[i]["video_id"]): (outputs[i], float(source[i]["duration"]))
        for i in sorted(outputs)
    }
    return predictions_json(loaded, videos), outputs


def check_compatible(model_meta: DatasetMetadata, data_meta: DatasetMetadata) -> None:
    """An `InputError` unless a dataset has the classes and feature sizes of the model."""
    problems = []
    if tuple(model_meta.class_names) != tuple(data_meta.class_names):
        problems.append(
            f"classes differ ({data_meta.num_classes} in the data, "
            f"{model_meta.num_classes} in the model)"
        )
    if model_meta.visual_dim != data_meta.visual_dim:
        problems.append(
            f"visual dim {data_meta.visual_dim} in the data, {model_meta.visual_dim} in the model"
        )
    if model_meta.audio_dim != data_meta.audio_dim:
        problems.append(
            f"audio dim {data_meta.audio_dim} in the data, {model_meta.audio_dim} in the model"
        )
    if problems:
        raise InputError(
            f"dataset {data_meta.name!r} does not match the model's ({model_meta.name!r}): "
            + "; ".join(problems)
        )


def load_split_dataset(loaded: LoadedModel, data_dir: str | None) -> Dataset:
    """The model's dataset, from `data_dir` if given (else the config's data_dir)."""
    config = ml_collections.ConfigDict(loaded.config.to_dict())
    if data_dir:
        config.data.data_dir = str(data_dir)
    return loading.load_dataset(config)


def open_split(loaded: LoadedModel, data_dir: str | None, split: str) -> tuple[Dataset, str]:
    """(dataset, split name) of the model's dataset (from `data_dir` if given) for a split
    alias or name; an `InputError` naming the known splits if there is no such split."""
    dataset = load_split_dataset(loaded, data_dir)
    name = dataset.metadata.resolve_split(split)
    try:
        dataset.split(name)
    except KeyError as err:
        raise InputError(str(err.args[0])) from None
    return dataset, name
