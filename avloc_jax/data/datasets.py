"""Open a dataset built by `avloc build-data` (TFDS ArrayRecord) as an `avloc` Dataset.

Reading needs no TensorFlow and no builder code: `tfds.builder_from_directory` reads the
stored features and metadata, and `as_data_source` gives random access over ArrayRecord.
Items are decoded to the shared record (avloc_jax.data.records), with ``video_id`` as str.

Split roles come from the stored metadata. Where a dataset has no usable validation
split (ActivityNet1.2, THUMOS14: the official "validation"/"test" subsets play the test
role), a deterministic fraction of the training split, chosen by a hash of the video id,
is held out as ``val`` and the rest is ``train``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from avloc_jax.data.records import Dataset, DatasetMetadata, Record, as_str

log = logging.getLogger("avloc.data")

HELDOUT_TRAIN = "train"  # the training split minus the held-out part
HELDOUT_VAL = "val"  # the held-out part of the training split


class RecordSource(Sequence[Record]):
    """Random access to one split as Records, optionally through an index subset.

    ``lengths`` (int64 [N]) holds every video's snippet count without decoding features:
    the input pipeline uses it for length buckets.
    """

    def __init__(
        self,
        source: Any,
        *,
        lengths: npt.ArrayLike | None = None,
        indices: npt.ArrayLike | None = None,
        name: str = "",
    ):
        self._source = source
        self._indices = None if indices is None else np.asarray(indices, np.int64)
        self.name = name
        size = len(source) if self._indices is None else len(self._indices)
        counts = None if lengths is None else np.asarray(lengths, np.int64)
        if counts is not None:
            if self._indices is not None and len(counts) == len(source):
                counts = counts[self._indices]
            if len(counts) != size:
                raise ValueError(
                    f"split {name!r}: {len(counts)} stored snippet counts for {size} examples"
                )
        self.lengths = counts
        self._size = size

    def __len__(self) -> int:
        return self._size

    def _source_index(self, index: int) -> int:
        index = int(index)
        if index < 0:
            index += self._size
        if not 0 <= index < self._size:
            raise IndexError(
                f"index {index} out of range for split {self.name!r} of {self._size} examples"
            )
        return index if self._indices is None else int(self._indices[index])

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._size))]
        return decode_record(self._source[self._source_index(index)])

    def __getitems__(self, indices: Sequence[int]) -> list[Record]:
        positions = [self._source_index(i) for i in indices]
        if hasattr(self._source, "__getitems__"):
            items = self._source.__getitems__(positions)
        else:
            items = [self._source[i] for i in positions]
        return [decode_record(item) for item in items]

    def subset(self, indices: npt.ArrayLike, name: str) -> RecordSource:
        """A view of some examples of this split (indices into this split)."""
        rows = np.asarray(indices, np.int64)
        base = rows if self._indices is None else self._indices[rows]
        lengths = None if self.lengths is None else self.lengths[rows]
        return RecordSource(self._source, lengths=lengths, indices=base, name=name)


def decode_record(item: Mapping[str, Any]) -> Record:
    """A stored example -> Record (str id, float32 scalar duration, NumPy arrays)."""
    record: Record = {key: np.asarray(value) for key, value in item.items()}
    record["video_id"] = as_str(item["video_id"])
    record["duration"] = np.float32(item["duration"])
    return record


def heldout_indices(video_ids: Sequence[str], fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """(keep, heldout) int64 indices in file order; round(fraction * N) videos held out.

    The choice depends only on the ids (SHA-1 order), not on file order or machine, so the
    same videos are held out on every run and host.
    """
    n = len(video_ids)
    count = int(round(fraction * n))
    if fraction > 0 and n > 1:
        count = min(max(count, 1), n - 1)
    keys = [hashlib.sha1(f"avloc-heldout:{vid}".encode()).hexdigest() for vid in video_ids]
    order = sorted(range(n), key=lambda i: (keys[i], i))
    held = np.sort(np.asarray(order[:count], np.int64))
    keep = np.setdiff1d(np.arange(n, dtype=np.int64), held)
    return keep, held


def default_data_dir() -> Path:
    return Path(os.path.expanduser(os.environ.get("TFDS_DATA_DIR", "~/tensorflow_datasets")))


def _default_config(base: Path) -> str:
    """The config to read when none is named: 'default', else the only one built."""
    configs = sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if "default" in configs:
        return "default"
    if len(configs) == 1:
        return configs[0]
    raise FileNotFoundError(
        f"{base}: choose a builder config among {configs} (data.builder_config)"
    )


def open_builder(
    name: str,
    data_dir: str | os.PathLike | None = None,
    builder_config: str | None = None,
    version: str | None = None,
) -> Any:
    """The read-only TFDS builder of ``<data_dir>/<name>/<config>/<version>``.

    TFDS finds the build (`builder_from_files`: the latest version with its feature and
    dataset info files unless `version` is given) and reads it without the builder code.
    TFDS's own default-config lookup needs the builder class or a ``<name>/.config`` file
    that `avloc build-data` does not keep (it builds elsewhere and moves the version in),
    hence `_default_config`. FileNotFoundError names the folder and what was expected.
    """
    import tensorflow_datasets as tfds  # heavy; only needed here

    # Not re-exported as tfds.builder_from_files in tfds 4.9; tfds.builder's file fallback.
    from tensorflow_datasets.core.read_only_builder import builder_from_files

    root = Path(os.path.expanduser(str(data_dir))) if data_dir else default_data_dir()
    base = root / name
    if not base.is_dir():
        raise FileNotFoundError(
            f"no dataset {name!r} in {root}; "
            f"build it with `avloc build-data {name} --data-dir {root} ...`"
        )
    builder_config = builder_config or _default_config(base)
    spec = f"{name}/{builder_config}" + (f":{version}" if version else "")
    try:
        return builder_from_files(spec, data_dir=str(root))
    except tfds.core.DatasetNotFoundError as err:
        which = f"version {version}" if version else "a version"
        raise FileNotFoundError(
            f"{base / builder_config}: no complete build; expected {which} folder with "
            f"dataset_info.json and features.json (written by `avloc build-data {name}`); "
            f"configs here: {sorted(p.name for p in base.iterdir() if p.is_dir())}"
        ) from err


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    *,
    builder_config: str | None = None,
    heldout_fraction: float | None = None,
    version: str | None = None,
) -> Dataset:
    """Opens a built dataset; splits are lazy random-access `RecordSource`s.

    Args:
      name: ave | activitynet12 | thumos14 | generic.
      data_dir: where `avloc build-data` wrote it ('' / None: $TFDS_DATA_DIR or
        ~/tensorflow_datasets).
      builder_config: the TFDS config ('default', 'weak', a generic dataset's name).
      heldout_fraction: fraction of train held out as val where there is no val split;
        default: the value stored at build time (`avloc train` passes data.val_fraction).
        0 keeps all of train and uses the test split for validation (public WTAL practice;
        the log warns).
    Returns:
      Dataset whose metadata names the train / val / test splits to use.
    """
    builder = open_builder(name, data_dir, builder_config, version)
    return dataset_from_builder(builder, heldout_fraction=heldout_fraction)


def load_dataset_dir(path: str | os.PathLike, *, heldout_fraction: float | None = None) -> Dataset:
    """`load_dataset` of one build folder ``<data_dir>/<name>/<config>/<version>``."""
    import tensorflow_datasets as tfds  # heavy; only needed here

    builder = tfds.builder_from_directory(str(path))
    return dataset_from_builder(builder, heldout_fraction=heldout_fraction)


def dataset_from_builder(builder: Any, *, heldout_fraction: float | None = None) -> Dataset:
    """The Dataset of a (read-only) TFDS builder written by `avloc build-data`;
    `heldout_fraction` as in `load_dataset`."""
    name, path = builder.name, builder.data_dir
    stored = dict(builder.info.metadata or {})
    if "avloc" not in stored:
        raise ValueError(f"{path}: not built by avloc (no 'avloc' metadata)")
    meta = DatasetMetadata.from_json(stored["avloc"])
    roles = stored.get("split_roles") or {
        r: meta.resolve_split(r) for r in ("train", "val", "test")
    }
    counts = stored.get("snippet_counts") or {}

    sources = builder.as_data_source()
    splits: dict[str, RecordSource] = {
        split: RecordSource(source, lengths=counts.get(split), name=split)
        for split, source in sources.items()
    }
    for split, skipped in (stored.get("skipped") or {}).items():
        if skipped:
            log.warning(
                "%s/%s: %d videos were skipped at build time (missing features)",
                name,
                split,
                len(skipped),
            )

    train_name, val_name, test_name = roles["train"], roles.get("val"), roles["test"]
    if not val_name:
        if heldout_fraction is None:
            heldout_fraction = stored.get("split_roles", {}).get("heldout_fraction", 0.1)
        if heldout_fraction > 0:
            full = splits[train_name]
            ids = (stored.get("video_ids") or {}).get(train_name) or _video_ids(full)
            keep, held = heldout_indices(ids, heldout_fraction)
            if train_name == HELDOUT_TRAIN:  # keep the full stored split reachable
                splits[f"{train_name}_full"] = full
            splits[HELDOUT_TRAIN] = full.subset(keep, HELDOUT_TRAIN)
            splits[HELDOUT_VAL] = full.subset(held, HELDOUT_VAL)
            train_name, val_name = HELDOUT_TRAIN, HELDOUT_VAL
        else:
            log.warning(
                "%s: no held-out validation (val_fraction=0): model selection uses the test split "
                "%r",
                name,
                test_name,
            )
            val_name = test_name
    meta = DatasetMetadata.from_json(
        {
            **meta.to_json(),
            "train_split": train_name,
            "val_split": val_name,
            "test_split": test_name,
        }
    )
    return Dataset(metadata=meta, splits=splits)


def _video_ids(source: RecordSource) -> list[str]:
    """Every video id of a split (decodes each example once; ids are not stored apart)."""
    return [source[i]["video_id"] for i in range(len(source))]
