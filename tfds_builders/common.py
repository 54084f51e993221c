"""What the avloc TFDS builders share: the record features, feature checks and stores,
input-path resolution and the dataset metadata.

Every builder writes the record of `avloc_jax.data.records` (one example per video) as
ArrayRecord, with no TensorFlow: TFDS's NumPy encoders write and `as_data_source` reads.
Examples keep the order in which they were generated (``disable_shuffling``), so index i
of a split is the i-th video of the source files' order.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from etils import epath
from tensorflow_datasets.core import utils as tfds_utils

from avloc_jax.data.annotations import DataError, load_npy
from avloc_jax.data.records import DatasetMetadata, resample_time

PathLike = str | os.PathLike
log = logging.getLogger("avloc.build")

VERSION = tfds.core.Version("1.0.0")
SNIPPET_TIME = "t_sec = index * duration / T"
DEFAULT_HELDOUT_FRACTION = 0.1


def record_features() -> tfds.features.FeaturesDict:
    """The shared record (see avloc_jax.data.records). Feature sizes vary between users'
    features, so they are dynamic here and recorded in the metadata; 'bytes' encoding
    stores the float arrays raw (TFDS needs it for two unknown dimensions)."""
    return tfds.features.FeaturesDict(
        {
            "video_id": tfds.features.Text(),
            "visual": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="bytes"),
            "audio": tfds.features.Tensor(shape=(None, None), dtype=np.float32, encoding="bytes"),
            "labels": tfds.features.Tensor(shape=(None,), dtype=np.float32),
            "duration": tfds.features.Scalar(dtype=np.float32),
            "segments": tfds.features.Tensor(shape=(None, 2), dtype=np.float32),
            "segment_labels": tfds.features.Tensor(shape=(None,), dtype=np.int32),
            "snippet_labels": tfds.features.Tensor(shape=(None,), dtype=np.int32),
        }
    )


# ----------------------------------------------------------------------------- checks


def check_features(
    x: Any, *, what: str, source: str, video: str, dim: int | None = None
) -> np.ndarray:
    """float32 [T, D] or DataError: wrong rank/dtype, zero length, wrong D, NaN/Inf.

    what: 'visual' / 'audio'; source: the file it came from; video: row and id.
    """
    try:
        x = np.asarray(x)
    except Exception as err:  # ragged or odd object
        raise DataError(f"{source}: {what} features of {video} are not an array: {err}") from err
    if x.dtype == object or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise DataError(
            f"{source}: {what} features of {video} have dtype {x.dtype}; expected a float array "
            "[T, D]"
        )
    if x.ndim != 2:
        raise DataError(
            f"{source}: {what} features of {video} have shape {list(x.shape)}; expected [T, D]"
        )
    if x.shape[0] == 0:
        raise DataError(
            f"{source}: {what} features of {video} have zero length (shape {list(x.shape)})"
        )
    if dim is not None and x.shape[1] != dim:
        raise DataError(
            f"{source}: {what} features of {video} have {x.shape[1]} dims; expected {dim} like the "
            "other videos"
        )
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise DataError(
            f"{source}: {what} features of {video} contain NaN/Inf (first at snippet {bad[0]}, dim "
            f"{bad[1]})"
        )
    return x


# ----------------------------------------------------------------------------- stores


class FeatureStore:
    """Per-video features, by annotation row and video id."""

    description: str

    def get(self, row: int, video_id: str) -> np.ndarray | None:
        """The raw array, or None if this store has no file for the video."""
        raise NotImplementedError

    def candidates(self, video_id: str) -> list[str]:
        """Where the features of `video_id` were expected (for error messages)."""
        return [self.description]


class ObjectArrayStore(FeatureStore):
    """A W-TALC style object .npy: row i holds video i's [T_i, D] array.

    Pickled object arrays cannot be read lazily: the whole file is loaded (W-TALC's
    ActivityNet1.2 file needs a few GB of RAM; use a folder store otherwise).
    """

    def __init__(self, path: Path, num_rows: int, what: str):
        self.description = str(path)
        log.info("loading %s features from %s", what, path)
        array = load_npy(path, f"{what} features")
        if array.ndim == 0 or len(array) != num_rows:
            raise DataError(
                f"{path}: {what} features have {len(array) if array.ndim else 0} rows; expected "
                f"{num_rows} "
                "(one per row of the annotation files)"
            )
        self._array = array

    def get(self, row: int, video_id: str) -> np.ndarray | None:
        return self._array[row]


class FolderStore(FeatureStore):
    """A folder of ``<video_id>.npy`` (``v_<video_id>.npy`` is accepted too)."""

    def __init__(self, path: Path):
        self.description = str(path)
        self._dir = path

    def candidates(self, video_id: str) -> list[str]:
        return [str(self._dir / f"{video_id}.npy"), str(self._dir / f"v_{video_id}.npy")]

    def get(self, row: int, video_id: str) -> np.ndarray | None:
        for path in map(Path, self.candidates(video_id)):
            if path.is_file():
                return load_npy(path, "feature file")
        return None


def open_store(path: Path, num_rows: int | None, what: str) -> FeatureStore:
    """A folder store for a directory, an object-array store for a .npy file."""
    if path.is_dir():
        return FolderStore(path)
    if path.is_file():
        if num_rows is None:
            raise DataError(
                f"{path}: {what} features must be a folder of <video_id>.npy files here"
            )
        return ObjectArrayStore(path, num_rows, what)
    raise DataError(f"{what} features not found: {path}")


# ----------------------------------------------------------------------------- builders


def split_roles_json(
    train: str, val: str | None, test: str, heldout_fraction: float
) -> dict[str, Any]:
    """Which stored split plays which role. With ``val=None`` the loader holds out
    `heldout_fraction` of `train` as the validation split (deterministic, by video id)."""
    return {"train": train, "val": val, "test": test, "heldout_fraction": float(heldout_fraction)}


# (TFDS's registry takes skip_registration in __init_subclass__; its stubs do not say so)
class AvlocBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):  # type: ignore[call-arg]
    """Base of the avloc builders: inputs by name, from explicit paths or a manual dir.

    Args (besides TFDS's data_dir / config / file_format):
      paths: {input name: path}; inputs not given are looked up in `manual_dir` (or TFDS's
        download_config.manual_dir) under their default file names (`INPUTS`).
      manual_dir: the folder holding the dataset's files.
      skip_missing: skip videos whose per-video feature file is missing (with a count in
        the log and the metadata) instead of failing.
      heldout_fraction: recorded in the metadata; the loader holds out this fraction of the
        training split as validation where the dataset has no usable validation split.
    """

    VERSION = VERSION
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        "See docs/data.md: point --manual-dir at the dataset's feature and annotation files."
    )
    # input name -> default names under the manual dir, first existing wins
    INPUTS: Mapping[str, Sequence[str]] = {}
    DESCRIPTION = ""

    def __init__(
        self,
        *,
        paths: Mapping[str, PathLike] | None = None,
        manual_dir: PathLike | None = None,
        skip_missing: bool = False,
        heldout_fraction: float = DEFAULT_HELDOUT_FRACTION,
        **kwargs: Any,
    ):
        unknown = set(paths or {}) - set(self.INPUTS)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown inputs {sorted(unknown)}; expected some of "
                f"{sorted(self.INPUTS)}"
            )
        if not 0.0 <= heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
        self._paths = {k: Path(os.path.expanduser(str(v))) for k, v in (paths or {}).items() if v}
        self._manual_dir = Path(os.path.expanduser(str(manual_dir))) if manual_dir else None
        self._skip_missing = skip_missing
        self._heldout_fraction = heldout_fraction
        kwargs.setdefault("file_format", "array_record")
        super().__init__(**kwargs)

    def video_features(
        self, raw: Mapping[str, Any], stores: Mapping[str, Any], dims: DimTracker, video: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """One video's checked, aligned (visual, audio) from `raw` (read from `stores`,
        whose `description` names the files in errors). The feature sizes met so far go
        into the dataset's metadata: a user's files decide them, they are never typed."""
        v, a = aligned_features(
            raw["visual"],
            raw["audio"],
            dims=dims,
            visual_source=stores["visual"].description,
            audio_source=stores["audio"].description,
            video=video,
        )
        meta = self.info.metadata["avloc"]
        meta["visual_dim"], meta["audio_dim"] = int(v.shape[1]), int(a.shape[1])
        return v, a

    @tfds_utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path | None:
        # TFDS's own lookup touches `importlib_resources`, a backport that is not installed
        # on Python >= 3.9 (tfds 4.9.10 imports it lazily there and fails); the module file
        # is all it needs (to look for a checksums file, which these builders do not have).
        return epath.Path(inspect.getfile(cls))

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=record_features(),
            metadata=tfds.core.MetadataDict(),
            disable_shuffling=True,  # index i = the i-th video in the source order
        )

    @classmethod
    def input_names(cls, config_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(required, optional) input names of config `config_name`; subclasses narrow it."""
        return tuple(cls.INPUTS), ()

    def _manual(self, dl_manager) -> Path | None:
        if self._manual_dir is not None:
            return self._manual_dir
        try:
            return Path(str(dl_manager.manual_dir))
        except (AssertionError, ValueError):  # no manual dir configured or it is empty
            return None

    def _inputs(self, dl_manager) -> dict[str, Path | None]:
        """Every input of this config by name (None: an optional one that is absent)."""
        required, optional = self.input_names(self.builder_config.name)
        paths: dict[str, Path | None] = {name: self._input(name, dl_manager) for name in required}
        for name in optional:
            paths[name] = self._input(name, dl_manager, required=False)
        return paths

    def _input(self, name: str, dl_manager, *, required: bool = True) -> Path | None:
        """The path of input `name`: explicit, else the first default that exists."""
        return resolve_input(
            self.name,
            name,
            self.INPUTS[name],
            explicit=self._paths.get(name),
            manual=self._manual(dl_manager),
            required=required,
        )

    # TFDS prints these two banners on stdout (the first names the temporary build
    # folder); avloc's stdout is the build summary only, so they go to the debug log.
    def _log_download_bytes(self) -> None:
        log.debug("preparing %s in %s", self.name, self.data_dir)

    def _log_download_done(self) -> None:
        log.debug("prepared %s in %s", self.name, self.data_dir)

    def _set_metadata(
        self,
        meta: DatasetMetadata,
        roles: Mapping[str, Any],
        sources: Mapping[str, Any],
        **extra: Any,
    ) -> None:
        self.info.metadata.update(
            {
                "avloc": meta.to_json(),
                "split_roles": dict(roles),
                "snippet_time": SNIPPET_TIME,
                "sources": {k: str(v) for k, v in sources.items() if v is not None},
                "snippet_counts": {},  # split -> [T_i], filled while generating
                "video_ids": {},  # split -> [id], so the loader needs no decoding for them
                "skipped": {},  # split -> [video ids] skipped for missing features
                **extra,
            }
        )

    def _note_example(self, split: str, video_id: str, num_snippets: int) -> None:
        self.info.metadata["snippet_counts"].setdefault(split, []).append(int(num_snippets))
        self.info.metadata["video_ids"].setdefault(split, []).append(str(video_id))

    def _note_skipped(self, split: str, video_id: str) -> None:
        self.info.metadata["skipped"].setdefault(split, []).append(video_id)


def check_manual_dir(manual: Path | None) -> None:
    """DataError unless `manual` (the --manual-dir) is None or an existing folder."""
    if manual is None:
        return
    if not manual.exists():
        raise DataError(f"--manual-dir {manual} does not exist")
    if not manual.is_dir():
        raise DataError(f"--manual-dir {manual} is not a folder")


def resolve_input(
    builder: str,
    name: str,
    defaults: Sequence[str],
    *,
    explicit: Path | None,
    manual: Path | None,
    required: bool = True,
) -> Path | None:
    """Input `name` of builder `builder`: the explicit path (which must exist), else the
    first of `defaults` that exists under `manual`; DataError naming where it was looked
    for when it is required and absent."""
    if explicit is not None:
        if not explicit.exists():
            raise DataError(f"{builder}: {name} not found: {explicit}")
        return explicit
    check_manual_dir(manual)
    if manual is not None:
        for default in defaults:
            if (manual / default).exists():
                return manual / default
    if not required:
        return None
    where = f"in {manual}" if manual is not None else "(no --manual-dir given)"
    raise DataError(
        f"{builder}: {name} not found {where}; expected one of {list(defaults)} "
        f"or an explicit path (--path {name}=...)"
    )


def make_example(
    *,
    video_id: str,
    visual: np.ndarray,
    audio: np.ndarray,
    labels: np.ndarray,
    duration: float,
    segments: np.ndarray,
    segment_labels: np.ndarray,
    snippet_labels: np.ndarray,
) -> dict[str, Any]:
    """One record with the stored dtypes."""
    return {
        "video_id": video_id,
        "visual": np.ascontiguousarray(visual, np.float32),
        "audio": np.ascontiguousarray(audio, np.float32),
        "labels": np.asarray(labels, np.float32),
        "duration": np.float32(duration),
        "segments": np.asarray(segments, np.float32).reshape(-1, 2),
        "segment_labels": np.asarray(segment_labels, np.int32).reshape(-1),
        "snippet_labels": np.asarray(snippet_labels, np.int32).reshape(-1),
    }


@dataclasses.dataclass
class DimTracker:
    """Remembers the first video's feature sizes so that every later one is checked."""

    visual: int | None = None
    audio: int | None = None


def aligned_features(
    visual_raw: Any,
    audio_raw: Any,
    *,
    dims: DimTracker,
    visual_source: str,
    audio_source: str,
    video: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Checked float32 visual [T, Dv] and audio resampled to [T, Da]."""
    visual = check_features(
        visual_raw, what="visual", source=visual_source, video=video, dim=dims.visual
    )
    audio = check_features(
        audio_raw, what="audio", source=audio_source, video=video, dim=dims.audio
    )
    dims.visual, dims.audio = visual.shape[1], audio.shape[1]
    # Audio (e.g. VGGish, 0.96 s) and visual (e.g. I3D, 16 frames) snippet rates differ:
    # resample audio onto the visual snippets so that index t means the same time.
    return visual, resample_time(audio, visual.shape[0])


def generate_with_counts(builder: AvlocBuilder, split: str, examples: Iterator[tuple[Any, dict]]):
    """Passes examples through, recording each one's id and snippet count in the metadata."""
    count = 0
    for key, example in examples:
        builder._note_example(split, example["video_id"], example["visual"].shape[0])  # pylint: disable=protected-access
        count += 1
        yield key, example
    if count == 0:  # TFDS cannot store an empty split; say why it is empty
        skipped = len(builder.info.metadata["skipped"].get(split, []))
        raise DataError(
            f"{builder.name}: split {split!r} has no video ({skipped} skipped for missing features)"
        )
