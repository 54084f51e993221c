"""Loading a trained model for inference (a workdir or a bundle), and writing bundles.

Two sources of a model:

* a **workdir** written by `avloc train`: the resolved config (`W/config.json`), the
  best-by-validation parameters (`W/checkpoints/best`, falling back to `last` with a
  notice), and the dataset metadata (`W/dataset_metadata.json`; if the training run did
  not write it, it is derived from the config: the demo data are regenerated from the
  seed, a built dataset is opened from `data.data_dir`);
* a **bundle** written by `avloc export` (`write_bundle`): `config.json`,
  `dataset_metadata.json`, `bundle.json` and `params/` (an orbax checkpoint of the
  parameters only). It is self-contained: no dataset and no optimizer state are needed.

`dataset_metadata.json` is `DatasetMetadata.to_json()` plus ``seconds_per_snippet``, the
length of one visual snippet: `avloc predict` uses it to turn snippet indices into
seconds when no `--duration` is given (duration = T x seconds_per_snippet).

Running the loaded model is `serving.prediction`; `serving.inference` gathers both.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
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
from avloc_jax.data.records import TASK_AVE, DatasetMetadata
from avloc_jax.model import inputs as model_inputs

BUNDLE_FILE = "bundle.json"
BUNDLE_PARAMS_DIR = "params"
BUNDLE_FORMAT = "avloc-jax-bundle"
BUNDLE_VERSION = 1

Notice = Callable[[str], None]


def stderr_notice(message: str) -> None:
    print(message, file=sys.stderr)


class InputError(ValueError):
    """A user-supplied file or option is unusable; the message says which and why."""


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
    return dataset.metadata, seconds_per_snippet(dataset, loading.declared_snippet_seconds(config))


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
    """Freshly initialised parameters: the structure a checkpoint is restored into (the
    training's own initialisation, `avloc_jax.model.inputs.init_params`)."""
    return model_inputs.init_params(
        model, jax.random.PRNGKey(0), metadata.visual_dim, metadata.audio_dim
    )


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
