"""`dataset_metadata.json`: what a trained model needs to know about its data.

`DatasetMetadata.to_json()` plus ``seconds_per_snippet``, the length of one visual
snippet. `avloc train` writes it into the workdir once the dataset is loaded, so that
`predict`, `plot` and `export` never need the dataset itself to know the classes, the
feature sizes, or how to turn snippet indices into seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.common.io import atomic_write_json
from avloc_jax.common.workdir import DATASET_METADATA_FILE
from avloc_jax.data.records import Dataset, DatasetMetadata

METADATA_FILE = DATASET_METADATA_FILE  # the name is the workdir layout's (common/workdir.py)


def seconds_per_snippet(
    dataset: Dataset, declared: float | None = None, max_videos: int = 64
) -> float | None:
    """Length in seconds of one visual snippet of `dataset`.

    In order: a metadata field if the dataset declares one; `declared`, the length its
    config states (`data.loading.declared_snippet_seconds`: the demo's
    `visual_snippet_seconds`); else the median of duration / T over the first
    `max_videos` training videos (T = ⌈duration / snippet⌉, so this slightly
    underestimates for short videos). None if nothing is known.
    """
    meta = dataset.metadata
    for field in ("seconds_per_snippet", "visual_snippet_seconds", "snippet_seconds"):
        value = getattr(meta, field, None)
        if value:
            return float(value)
    if declared is not None:
        return float(declared)
    ratios = []
    try:
        source = dataset.split(meta.train_split)
        for index in range(min(len(source), max_videos)):
            record = source[index]
            length = len(record["visual"])
            if length > 0 and float(record["duration"]) > 0:
                ratios.append(float(record["duration"]) / length)
    except (KeyError, TypeError):
        return None
    return float(np.median(ratios)) if ratios else None


def metadata_json(metadata: DatasetMetadata, snippet_seconds: float | None) -> dict[str, Any]:
    """What `dataset_metadata.json` holds: the metadata plus seconds_per_snippet."""
    payload = metadata.to_json()
    payload["class_names"] = list(payload["class_names"])
    payload["tiou_thresholds"] = [float(x) for x in payload["tiou_thresholds"]]
    payload["seconds_per_snippet"] = snippet_seconds
    return payload


def write_dataset_metadata(
    directory: Path | str, dataset: Dataset, declared_snippet_seconds: float | None = None
) -> Path:
    """Writes `directory/dataset_metadata.json` atomically (call on process 0 only).

    `avloc train` calls it once the dataset is loaded, so that `predict`, `plot` and
    `export` never need the dataset itself to know the classes and feature sizes.
    `declared_snippet_seconds`: as `seconds_per_snippet`'s `declared`.
    """
    path = Path(directory) / METADATA_FILE
    payload = metadata_json(
        dataset.metadata, seconds_per_snippet(dataset, declared_snippet_seconds)
    )
    atomic_write_json(path, payload)
    return path


def read_dataset_metadata(directory: Path | str) -> tuple[DatasetMetadata, float | None] | None:
    """(metadata, seconds_per_snippet) from `directory/dataset_metadata.json`, or None."""
    path = Path(directory) / METADATA_FILE
    if not path.exists():
        return None
    payload = json.loads(path.read_text())
    return DatasetMetadata.from_json(payload), payload.get("seconds_per_snippet")
