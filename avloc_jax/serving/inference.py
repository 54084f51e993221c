"""Inference with a trained model: loading (workdir or bundle), input checks, forward pass.

Two sources of a model:

* a **workdir** written by `avloc train`: the resolved config (`W/config.json`), the
  best-by-validation parameters (`W/checkpoints/best`, falling back to `last` with a
  notice), and the dataset metadata (`W/dataset_metadata.json`; if the training run did
  not write it, it is derived from the config: the demo data are regenerated from the
  seed, a built dataset is opened from `data.data_dir`);
* a **bundle** written by `avloc export`: `config.json`, `dataset_metadata.json`,
  `bundle.json` and `params/` (an orbax checkpoint of the parameters only). It is
  self-contained: no dataset and no optimizer state are needed.

`dataset_metadata.json` is `DatasetMetadata.to_json()` plus ``seconds_per_snippet``, the
length of one visual snippet: `avloc predict` uses it to turn snippet indices into
seconds when no `--duration` is given (duration = T x seconds_per_snippet).

Shapes: T = visual snippets of one video, Dv / Da = feature sizes, C = classes,
H = attention heads.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from avloc_jax import schema
from avloc_jax.common import io
from avloc_jax.common.workdir import CONFIG_FILE, LEGACY, Workdir, rank
from avloc_jax.data import loading
from avloc_jax.data.metadata_file import (
    METADATA_FILE,
    metadata_json,
    read_dataset_metadata,
    seconds_per_snippet,
)
from avloc_jax.data.records import TASK_AVE, Dataset, DatasetMetadata, resample_time

BUNDLE_FILE = "bundle.json"
BUNDLE_PARAMS_DIR = "params"
BUNDLE_FORMAT = "avloc-jax-bundle"
BUNDLE_VERSION = 1
BACKGROUND = "background"

# Inputs are padded to a multiple of this many snippets before the jitted forward pass,
# so that videos of similar lengths share one compilation. Padded snippets are masked
# and cannot change the outputs at real snippets (tests/test_models.py).
PAD_MULTIPLE = 32

Notice = Callable[[str], None]


def stderr_notice(message: str) -> None:
    print(message, file=sys.stderr)


class InputError(ValueError):
    """A user-supplied file or option is unusable; the message says which and why."""


# ----------------------------------------------------------------------------- loading


@dataclasses.dataclass
class LoadedModel:
    """A trained model ready for inference."""

    config: ml_collections.ConfigDict
    metadata: DatasetMetadata
    seconds_per_snippet: float | None
    params: Any
    step: int  # the training step of the parameters
    source: str  # human-readable origin, e.g. "W (best checkpoint)"
    checkpoint: str = "best"  # which checkpoint the parameters come from: best, last
    _forward_cache: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def model(self):
        from avloc_jax import model as models

        return models.build_model(self.config.model, self.metadata.num_classes)

    @property
    def has_cross_attention(self) -> bool:
        return self.config.model.fusion == "cross_attention"

    @property
    def is_ave(self) -> bool:
        return self.metadata.task == TASK_AVE


def read_config(directory: Path | str) -> ml_collections.ConfigDict:
    """The config.json of a workdir or a bundle (same name in both), upgraded from older
    versions (common/workdir.py; ValueErrors name the file)."""
    saved = Workdir(directory)
    if not saved.config_path.exists():
        raise FileNotFoundError(
            f"{saved.config_path} not found: expected a workdir written by `avloc train` "
            "or a bundle from `avloc export`"
        )
    # Saved by an older version: fill the keys added since with their old behaviour; then
    # the same validation as every config (ConfigError naming the file and the key).
    return ml_collections.ConfigDict(saved.read_config(validate=schema.validate))


def workdir_metadata(
    workdir: Path | str, config: ml_collections.ConfigDict
) -> tuple[DatasetMetadata, float | None]:
    """The workdir's dataset metadata: its metadata file, else derived from the config."""
    stored = read_dataset_metadata(workdir)
    if stored is not None:
        return stored
    dataset = loading.load_dataset(
        config
    )  # demo: regenerated from the seed; else opens data.data_dir
    return dataset.metadata, seconds_per_snippet(dataset, config)


def load_workdir(
    workdir: Path | str, checkpoint: str = "best", notice: Notice = stderr_notice
) -> LoadedModel:
    """The parameters of a training workdir (best by validation, else last; see module doc).

    The checkpoint holds the whole train state; only its ``params`` subtree is read
    (an orbax partial restore), so serving needs neither the optimizer nor the engine.
    """
    workdir = Path(workdir)
    if not workdir.is_dir():
        raise FileNotFoundError(f"workdir {workdir} does not exist")
    config = read_config(workdir)
    metadata, sps = workdir_metadata(workdir, config)
    checkpoints_dir = Workdir(workdir).checkpoints_dir
    if not checkpoints_dir.is_dir():
        raise FileNotFoundError(
            f"no checkpoints under {checkpoints_dir}: has `avloc train` run in this workdir?"
        )
    abstract = abstract_params(config, metadata)
    restored = restore_params(checkpoints_dir, checkpoint, abstract)
    used = checkpoint
    if restored is None and checkpoint == "best":
        restored, used = restore_params(checkpoints_dir, "last", abstract), "last"
        if restored is not None:
            notice(
                f"note: {workdir} has no best-by-validation checkpoint; "
                f"using the last one (step {restored[1]})"
            )
    if restored is None:
        raise FileNotFoundError(f"no {checkpoint!r} checkpoint under {checkpoints_dir}")
    params, step = restored
    return LoadedModel(config, metadata, sps, params, step, f"{workdir} ({used} checkpoint)", used)


def abstract_params(config: ml_collections.ConfigDict, metadata: DatasetMetadata) -> Any:
    """The parameters' shapes and dtypes, replicated over the mesh; nothing is initialised."""
    from avloc_jax import model as models
    from avloc_jax.common import parallel

    model = models.build_model(config.model, metadata.num_classes)
    abstract = jax.eval_shape(lambda: init_params(model, metadata))
    return _with_sharding(abstract, parallel.replicated(parallel.make_mesh()))


def restore_params(directory: Path, which: str, abstract: Any) -> tuple[Any, int] | None:
    """(params, step) of the `which` ('best' or 'last') train-state checkpoint under
    `directory`, or None if there is none.

    The workdir layout (common/workdir.py, written by engine/checkpoints.py): one orbax
    manager in `directory`, its evaluated saves ranked by `workdir.rank` (best is the
    highest selection value, the earlier step on ties). Older workdirs have
    `directory/best` (only the best step) and `directory/last`; they are read as before."""
    import orbax.checkpoint as ocp

    if which not in LEGACY:
        raise ValueError(f"checkpoint must be 'best' or 'last', got {which!r}")
    directory = directory.absolute()
    legacy = directory / which
    best_fn: Callable[[dict[str, Any]], Any] | None
    if legacy.is_dir():
        path, best_fn = legacy, None
    else:
        path, best_fn = directory, rank
    if not path.is_dir():
        return None
    options = ocp.CheckpointManagerOptions(
        read_only=True, create=False, save_interval_steps=0, best_fn=best_fn, best_mode="max"
    )
    # orbax warns "Given directory is read only" for every read-only manager: expected
    # here (serving only restores), so that one warning is not shown.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        manager = ocp.CheckpointManager(
            path, item_handlers=ocp.PyTreeCheckpointHandler(), options=options
        )
    finally:
        absl_logger.setLevel(level)
    try:
        if best_fn is None or which == "last":
            step = manager.latest_step()
        else:
            step = manager.best_step()  # None until an evaluated save: metrics rank saves
        if step is None:
            return None
        target = {"params": abstract}
        restore_args = jax.tree.map(lambda x: ocp.ArrayRestoreArgs(sharding=x.sharding), target)
        restored = manager.restore(
            step,
            args=ocp.args.PyTreeRestore(target, restore_args=restore_args, partial_restore=True),
        )
    finally:
        manager.close()
    return restored["params"], int(step)


def is_bundle(directory: Path | str) -> bool:
    return (Path(directory) / BUNDLE_FILE).exists()


def load_bundle(bundle: Path | str) -> LoadedModel:
    """A bundle's parameters (no optimizer state), config and metadata."""
    import orbax.checkpoint as ocp

    bundle = Path(bundle)
    if not is_bundle(bundle):
        raise FileNotFoundError(
            f"{bundle} is not an inference bundle (no {BUNDLE_FILE}); write one with `avloc export`"
        )
    info = json.loads((bundle / BUNDLE_FILE).read_text())
    if info.get("format") != BUNDLE_FORMAT or int(info.get("version", -1)) > BUNDLE_VERSION:
        raise FileNotFoundError(
            f"{bundle}: unsupported bundle format {info.get('format')!r} "
            f"version {info.get('version')!r}"
        )
    config = read_config(bundle)
    stored = read_dataset_metadata(bundle)
    if stored is None:
        raise FileNotFoundError(f"{bundle / METADATA_FILE} is missing: the bundle is incomplete")
    metadata, sps = stored
    checkpointer = ocp.StandardCheckpointer()
    try:
        params = checkpointer.restore(
            (bundle / BUNDLE_PARAMS_DIR).absolute(), abstract_params(config, metadata)
        )
    finally:
        checkpointer.close()
    return LoadedModel(
        config,
        metadata,
        sps,
        params,
        int(info.get("step", -1)),
        f"{bundle} (bundle)",
        str(info.get("checkpoint", "best")),
    )


def load(
    workdir: Path | str | None = None,
    bundle: Path | str | None = None,
    notice: Notice = stderr_notice,
) -> LoadedModel:
    """Exactly one of a workdir or a bundle."""
    if workdir is not None and bundle is None:
        return load_workdir(workdir, notice=notice)
    if bundle is not None and workdir is None:
        return load_bundle(bundle)
    raise ValueError("give exactly one of a workdir or a bundle")


def _with_sharding(abstract: Any, sharding: Any) -> Any:
    """ShapeDtypeStructs placed on `sharding` (replicated: inference runs on every device)."""
    return jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), abstract
    )


def init_params(model: Any, metadata: DatasetMetadata) -> Any:
    """Freshly initialised parameters: the structure a checkpoint is restored into."""
    shape = (1, 8)
    variables = model.init(
        jax.random.PRNGKey(0),
        jnp.zeros(shape + (metadata.visual_dim,)),
        jnp.zeros(shape + (metadata.audio_dim,)),
        jnp.ones(shape, bool),
    )
    return variables["params"]


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


# ----------------------------------------------------------------------------- bundles


def write_bundle(
    loaded: LoadedModel,
    out: Path | str,
    force: bool = False,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Writes a self-contained inference bundle of `loaded` to `out`, atomically.

    Layout: config.json, dataset_metadata.json, bundle.json (format, version, step,
    source), params/ (orbax checkpoint of the parameters only). Everything is written
    into a temporary sibling directory that is renamed to `out` at the end, so `out`
    is either absent, the previous bundle, or complete; never half-written.
    """
    import os
    import shutil
    import time

    import orbax.checkpoint as ocp

    out = Path(out).absolute()
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        io.atomic_write_json(tmp / CONFIG_FILE, loaded.config.to_dict())
        io.atomic_write_json(
            tmp / METADATA_FILE, metadata_json(loaded.metadata, loaded.seconds_per_snippet)
        )
        checkpointer = ocp.StandardCheckpointer()
        try:
            checkpointer.save(tmp / BUNDLE_PARAMS_DIR, jax.device_get(loaded.params))
            checkpointer.wait_until_finished()
        finally:
            checkpointer.close()
        info = {
            "format": BUNDLE_FORMAT,
            "version": BUNDLE_VERSION,
            "step": loaded.step,
            "source": loaded.source,
            "checkpoint": loaded.checkpoint,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "num_parameters": int(
                sum(np.size(x) for x in jax.tree_util.tree_leaves(loaded.params))
            ),
            **dict(extra or {}),
        }
        # bundle.json last: its presence marks a complete bundle.
        io.atomic_write_json(tmp / BUNDLE_FILE, info)
        if out.exists():  # --force: swap, then delete the old bundle
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
