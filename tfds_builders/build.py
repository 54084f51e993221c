"""Building a dataset with one of the TFDS builders (ArrayRecord, no TensorFlow).

`build` runs a builder into a temporary folder inside the data dir and renames the
result into ``D/<name>/<config>/<version>`` only when complete, so a failed or
interrupted build leaves no partial dataset; a complete dataset is not replaced unless
asked. `summary` describes a built dataset (what `avloc build-data` prints).

This orchestration lives here, not in `avloc_jax.data`: the builders import the data
layer, so the data layer must not import them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avloc_jax.data.annotations import DataError
from tfds_builders import BUILDERS, get_builder_class

DATASETS = tuple(BUILDERS)


class BuildRefused(RuntimeError):
    """The target dataset exists and overwriting was not asked for."""


def build(
    dataset: str,
    data_dir: str | os.PathLike,
    *,
    builder_config: str = "default",
    paths: Mapping[str, str] | None = None,
    manual_dir: str | os.PathLike | None = None,
    overwrite: bool = False,
    builder_kwargs: Mapping[str, Any] | None = None,
    show_progress: bool = True,
) -> Path:
    """Builds `dataset` into ``data_dir/<dataset>/<builder_config>/<version>``; returns that path.

    Args:
      paths: builder inputs by name (e.g. annotations, visual, audio).
      manual_dir: a folder holding the dataset's files under their usual names.
      builder_kwargs: further builder arguments (e.g. skip_missing, heldout_fraction).
      show_progress: TFDS progress bars, when stderr is a terminal (`progress_enabled`).

    Raises BuildRefused if a complete build exists and not `overwrite`; DataError or
    ValueError for bad input, found before anything is written where it can be
    (`check_inputs`). A failed build leaves nothing new: not its temporary folder, nor
    the folders it created (a `data_dir` that did not exist still does not).
    """
    import tensorflow_datasets as tfds

    from avloc_jax.common import progress

    cls = get_builder_class(dataset)
    data_dir = Path(os.path.expanduser(str(data_dir)))
    config = _builder_config(cls, dataset, builder_config)
    check_inputs(cls, builder_config, paths, manual_dir, builder_kwargs)
    final = data_dir / dataset / builder_config / str(cls.VERSION)
    if (final / "dataset_info.json").is_file() and not overwrite:
        raise BuildRefused(
            f"{final} already holds a complete dataset; pass --overwrite to rebuild it"
        )
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder")
    if not (show_progress and progress.progress_enabled()):
        tfds.disable_progress_bar()
    # The folders this build creates (deepest first), removed again if it fails.
    created = [
        d
        for d in (final.parent, final.parent.parent, data_dir, *data_dir.parents)
        if not d.exists()
    ]
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        # Same filesystem as the target, so the final move is a rename.
        tmp = Path(tempfile.mkdtemp(prefix=f".avloc-build-{dataset}-", dir=data_dir))
        builder = cls(
            data_dir=str(tmp),
            config=config,
            paths=dict(paths or {}),
            manual_dir=manual_dir,
            **dict(builder_kwargs or {}),
        )
        builder.download_and_prepare()
        built = Path(str(builder.data_dir))
        if not (built / "dataset_info.json").is_file():
            raise RuntimeError(f"the build finished without writing {built / 'dataset_info.json'}")
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # overwrite (or leftovers of an incomplete build)
            os.replace(final, tmp / "replaced")
        os.replace(built, final)
    except BaseException:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # deepest first; a folder someone else filled stays
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    shutil.rmtree(tmp, ignore_errors=True)
    return final


def check_inputs(
    cls: Any,
    builder_config: str,
    paths: Mapping[str, str] | None,
    manual_dir: str | os.PathLike | None,
    builder_kwargs: Mapping[str, Any] | None = None,
) -> None:
    """What can be checked before anything is written: the manual dir exists, the explicit
    paths are known inputs and exist, every required input is found, the held-out
    fraction is in [0, 1). DataError / ValueError naming the path or input otherwise."""
    from tfds_builders import common

    unknown = sorted(set(paths or {}) - set(cls.INPUTS))
    if unknown:
        raise ValueError(
            f"{cls.name}: unknown inputs {unknown} (--path NAME=...); expected some of "
            f"{sorted(cls.INPUTS)}"
        )
    fraction = dict(builder_kwargs or {}).get("heldout_fraction", 0.0)
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"--heldout-fraction must be in [0, 1), got {fraction}")
    manual = Path(os.path.expanduser(str(manual_dir))) if manual_dir else None
    common.check_manual_dir(manual)
    explicit = {k: Path(os.path.expanduser(str(v))) for k, v in (paths or {}).items() if v}
    required, optional = cls.input_names(builder_config)
    for name in (*required, *optional):
        common.resolve_input(
            cls.name,
            name,
            cls.INPUTS[name],
            explicit=explicit.get(name),
            manual=manual,
            required=name in required,
        )


def _builder_config(cls: Any, dataset: str, name: str) -> Any:
    """The builder's config `name`; the generic builder takes any name (a user dataset)."""
    import tensorflow_datasets as tfds

    config = next((c for c in cls.BUILDER_CONFIGS if c.name == name), None)
    if config is not None:
        return config
    if dataset != "generic":
        raise ValueError(
            f"{dataset} has no config {name!r}; expected {[c.name for c in cls.BUILDER_CONFIGS]}"
        )
    return tfds.core.BuilderConfig(name=name, description="A user dataset.")


def summary(path: Path) -> str:
    """A built dataset at ``D/<name>/<config>/<version>``: task, classes, feature sizes,
    and per split the number of videos and their snippet counts."""
    from avloc_jax.data import datasets

    name, config = path.parent.parent.name, path.parent.name
    dataset = datasets.load_dataset_dir(path, heldout_fraction=0.0)
    meta = dataset.metadata
    lines = [
        f"built {name}/{config} in {path}",
        f"  task {meta.task}, {meta.num_classes} class{'es' if meta.num_classes != 1 else ''}, "
        f"visual dim {meta.visual_dim}, audio dim {meta.audio_dim}",
    ]
    for split, source in dataset.splits.items():
        # TFDS splits store their snippet counts (avloc_jax.data.datasets)
        lengths = getattr(source, "lengths", None)
        span = (
            f", snippets {int(lengths.min())}..{int(lengths.max())}"
            if lengths is not None and len(lengths)
            else ""
        )
        lines.append(f"  {split}: {len(source)} video{'s' if len(source) != 1 else ''}{span}")
    return "\n".join(lines)
