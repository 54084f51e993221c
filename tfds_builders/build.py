"""Building a dataset with one of the TFDS builders (ArrayRecord, no TensorFlow).

`build` runs a builder into a temporary folder inside the data dir and renames the
result into ``D/<name>/<config>/<version>`` only when complete, so a failed or
interrupted build leaves no partial dataset; a complete dataset is not replaced unless
asked. `summary` describes a built dataset (what `avloc build-data` prints).

This orchestration lives here, not in `avloc_jax.data`: the builders import the data
layer, so the data layer must not import them.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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

    Raises BuildRefused if a complete build exists and not `overwrite`; DataError for bad
    input. Nothing is left in `data_dir` by a failed build.
    """
    import tensorflow_datasets as tfds

    from avloc_jax.common import progress

    if not (show_progress and progress.progress_enabled()):
        tfds.disable_progress_bar()
    cls = get_builder_class(dataset)
    data_dir = Path(os.path.expanduser(str(data_dir)))
    final = data_dir / dataset / builder_config / str(cls.VERSION)
    if (final / "dataset_info.json").is_file() and not overwrite:
        raise BuildRefused(
            f"{final} already holds a complete dataset; pass --overwrite to rebuild it"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    # Same filesystem as the target, so the final move is a rename.
    tmp = Path(tempfile.mkdtemp(prefix=f".avloc-build-{dataset}-", dir=data_dir))
    try:
        builder = cls(
            data_dir=str(tmp),
            config=_builder_config(cls, dataset, builder_config),
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


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
        f"  task {meta.task}, {meta.num_classes} classes, "
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
        lines.append(f"  {split}: {len(source)} videos{span}")
    return "\n".join(lines)
