"""Semi-synthetic benchmark on real annotations, written in the real on-disk formats.

The videos, classes, durations, segments and splits are the real ones (W-TALC
ActivityNet1.2 annotation folder; AVE ``Annotations.txt`` and split files). Only the
features are synthesised, with the planted structure of `avloc_jax.data.synthetic_features`
(visually near-identical class pairs told apart by sound, silent classes, near-action
visual context, background music, misalignment, scene offsets, AR(1) noise), and the
optional benchmark conditions (`synthetic_features.Conditions`: per-segment offsets,
sparse audio cues, silent / occluded stretches; off by default). For AVE the
audio background is the real VGGish audio of the 178 background-only videos
(``audio_feature_noisy.h5``), and those 178 videos keep their real audio.

The output folder holds exactly the files `avloc build-data` reads, under their usual
names, so the whole pipeline runs as on real data:

* ActivityNet1.2: ``ActivityNet1.2-I3D-JOINTFeatures.npy`` (object array of [Tv, Dv]
  aligned with the annotation rows, 0.64 s snippets), ``ActivityNet1.2-audio.npy``
  (object array of [Ta, Da], 0.96 s snippets) and ``ActivityNet1.2-Annotations/`` (the
  subset rows of the real W-TALC files, same dtypes);
* AVE: ``Annotations.txt`` (the subset lines), ``visual_feature_vec.h5``,
  ``audio_feature.h5``, ``{train,val,test}_order.h5`` and the weak-setting files
  ``visual_feature_noisy.h5``, ``audio_feature_noisy.h5`` (float64), ``labels_noisy.h5``.

Plus ``benchmark.json`` (parameters, seed, class roles, chosen rows) and
``structure.npz`` (the class prototypes), which the builders ignore.
Everything is a pure function of (annotations, parameters, seed); the folder is written
in a temporary sibling and renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from avloc_jax.data import annotations as ann
from avloc_jax.data import synthetic_features

FLAVOURS = ("activitynet12", "ave")
ANET_ANNOTATIONS = "ActivityNet1.2-Annotations"
ANET_VISUAL = "ActivityNet1.2-I3D-JOINTFeatures.npy"
ANET_AUDIO = "ActivityNet1.2-audio.npy"
ANET_FILES = (
    "classlist.npy",
    "subset.npy",
    "videoname.npy",
    "url.npy",
    "duration.npy",
    "segments.npy",
    "labels.npy",
    "labels_all.npy",
    "resolution.npy",
)
AVE_SPLITS = ("train", "val", "test")


def default_annotations_root() -> Path:
    """``../shared/data`` relative to the repository (where the real annotations live)."""
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def default_config(flavour: str) -> ml_collections.ConfigDict:
    """Synthesis parameters (synthetic_features keys) plus the subset sizes."""
    c = synthetic_features.default_config()
    c.real_audio_gain = 0.0  # AVE: weight of the real VGGish background audio (std-normalised)
    if flavour == "activitynet12":
        c.visual_dim = 128
        c.audio_dim = 64
        c.num_classes = 20  # seeded subset of the 100 classes (0 = all)
        c.num_train = 600  # seeded subset of the `training` videos (0 = all)
        c.num_test = 300  # seeded subset of the `validation` videos (0 = all)
    elif flavour == "ave":
        c.visual_dim = 128
        c.audio_dim = 128  # VGGish size: the real background audio is 128-d
        c.visual_snippet_seconds = 1.0  # AVE: one snippet per second in both modalities
        c.audio_snippet_seconds = 1.0
        c.max_misalignment_seconds = 0.3
        c.context_seconds = 1.0
        c.real_audio_gain = 1.0
        c.num_train = 0  # 0 = all 3339 / 402 / 402
        c.num_val = 0
        c.num_test = 0
        c.num_noisy = 0  # 0 = all 178 background-only videos
    else:
        raise ValueError(f"unknown flavour {flavour!r}; expected one of {FLAVOURS}")
    return c


# ----------------------------------------------------------------------------- helpers


def _pick(rng: np.random.Generator, rows: np.ndarray, count: int) -> np.ndarray:
    """A seeded subset of `rows` (all if count is 0 or larger), kept in file order."""
    if count <= 0 or count >= len(rows):
        return np.sort(rows)
    return np.sort(rng.choice(rows, size=count, replace=False))


def _structure_json(
    structure: synthetic_features.ClassStructure, names: tuple[str, ...]
) -> dict[str, Any]:
    return {
        name: {"kind": kind, "partner": names[p] if p >= 0 else None}
        for name, kind, p in zip(names, structure.kinds, structure.partner)
    }


def _save_structure(folder: Path, structure: synthetic_features.ClassStructure) -> None:
    """The planted class prototypes (visual, audio, music), kept beside the features."""
    np.savez(
        folder / "structure.npz",
        visual=structure.visual,
        audio=structure.audio,
        music=structure.music,
    )


def _write_atomically(out: Path, overwrite: bool, write: Callable[[Path], dict]) -> dict:
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    os.chmod(tmp, 0o755)
    try:
        manifest = write(tmp)
        (tmp / "benchmark.json").write_text(json.dumps(manifest, indent=1))
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}-old-", dir=out.parent))
            os.replace(out, old / "x")
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _object_array(items: list) -> np.ndarray:
    arr = np.empty(len(items), dtype=object)
    for i, x in enumerate(items):
        arr[i] = x
    return arr


# ----------------------------------------------------------------------------- ActivityNet1.2


def make_activitynet12(
    out: str | os.PathLike,
    *,
    annotations: str | os.PathLike | None = None,
    config=None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict:
    """Writes the ActivityNet1.2-flavoured benchmark into `out`; returns the manifest."""
    config = config or default_config("activitynet12")
    folder = Path(annotations) if annotations else default_annotations_root() / "activitynet12"
    if (folder / ANET_ANNOTATIONS).is_dir():
        folder = folder / ANET_ANNOTATIONS
    real = ann.read_layout(folder, "activitynet12")  # validates the folder
    raw = {}
    for name in ANET_FILES:
        if (folder / name).is_file():
            raw[name] = np.load(folder / name, allow_pickle=True, encoding="bytes")

    rng = np.random.default_rng([seed, 7])
    all_names = real.class_names
    if 0 < config.num_classes < len(all_names):
        chosen = np.sort(rng.choice(len(all_names), size=config.num_classes, replace=False))
    else:
        chosen = np.arange(len(all_names))
    names = tuple(all_names[i] for i in chosen)
    keep = set(names)
    eligible = np.array(
        [
            r
            for r in range(len(real))
            if real.segment_classes(r).size
            and {all_names[c] for c in real.segment_classes(r)} <= keep
        ],
        dtype=np.int64,
    )
    subsets = np.array([ann.as_text(s) for s in raw["subset.npy"]])
    train_rows = _pick(rng, eligible[subsets[eligible] == "training"], config.num_train)
    test_rows = _pick(rng, eligible[subsets[eligible] == "validation"], config.num_test)
    rows = np.sort(np.concatenate([train_rows, test_rows]))

    structure = synthetic_features.make_class_structure(len(names), config, seed)
    conditions = synthetic_features.Conditions.from_config(config)
    index = {name: i for i, name in enumerate(names)}

    def write(tmp: Path) -> dict:
        adir = tmp / ANET_ANNOTATIONS
        adir.mkdir()
        for name, arr in raw.items():
            if name == "classlist.npy":
                sub = arr[chosen]
            else:
                sub = arr[rows]
            np.save(adir / name, sub, allow_pickle=True)
        visual, audio = [], []
        for row in rows.tolist():
            video_rng = np.random.default_rng([seed, 11, row])
            segments = [(float(start), float(end)) for start, end in real.segments[row]]
            labels = [index[all_names[c]] for c in real.segment_classes(row)]
            v, a = synthetic_features.synthesize_video(
                video_rng,
                float(real.durations[row]),
                segments,
                labels,
                structure,
                config,
                conditions,
            )
            visual.append(v)
            audio.append(a)
        np.save(tmp / ANET_VISUAL, _object_array(visual), allow_pickle=True)
        np.save(tmp / ANET_AUDIO, _object_array(audio), allow_pickle=True)
        _save_structure(tmp, structure)
        return {
            "flavour": "activitynet12",
            "seed": seed,
            "annotations": str(folder),
            "params": config.to_dict(),
            "classes": _structure_json(structure, names),
            "rows": rows.tolist(),
            "counts": {"training": int(len(train_rows)), "validation": int(len(test_rows))},
            "build": "avloc build-data activitynet12 --data-dir DATA --manual-dir {out}",
        }

    return _write_atomically(Path(out), overwrite, write)


# ----------------------------------------------------------------------------- AVE


def _h5_write(path: Path, key: str, data: np.ndarray) -> None:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=data)


def make_ave(
    out: str | os.PathLike,
    *,
    annotations: str | os.PathLike | None = None,
    config=None,
    seed: int = 0,
    overwrite: bool = False,
) -> dict:
    """Writes the AVE-flavoured benchmark into `out`; returns the manifest."""
    config = config or default_config("ave")
    folder = Path(annotations) if annotations else default_annotations_root() / "ave"
    if folder.is_file():
        folder = folder.parent
    real = ann.read_ave_annotations(folder / "Annotations.txt")
    lines = (folder / "Annotations.txt").read_text(encoding="utf-8").splitlines()
    data_lines = [line for line in lines if line.strip()]
    header = []
    if len(data_lines) == len(real) + 1:  # a header line
        header, data_lines = data_lines[:1], data_lines[1:]
    n = len(real)
    orders = {s: ann.read_ave_order(folder / f"{s}_order.h5", n) for s in AVE_SPLITS}
    real_noisy = ann.read_h5_array(
        folder / "audio_feature_noisy.h5", what="AVE audio_feature_noisy.h5"
    )
    noisy_labels = ann.read_h5_array(folder / "labels_noisy.h5", what="AVE labels_noisy.h5")
    if real_noisy.shape[-1] != config.audio_dim:
        raise ValueError(
            f"AVE audio_dim must be {real_noisy.shape[-1]} (the real VGGish background audio)"
        )

    rng = np.random.default_rng([seed, 7])
    counts = {"train": config.num_train, "val": config.num_val, "test": config.num_test}
    picked = {s: _pick(rng, orders[s], counts[s]) for s in AVE_SPLITS}
    rows = np.sort(np.concatenate(list(picked.values())))
    new_index = {int(r): i for i, r in enumerate(rows.tolist())}
    noisy_rows = _pick(rng, np.arange(len(real_noisy)), config.num_noisy)

    # Class roles are keyed by the class index of the full file (first appearance).
    structure = synthetic_features.make_class_structure(real.num_classes, config, seed)
    conditions = synthetic_features.Conditions.from_config(config)
    real_std = float(real_noisy.std()) or 1.0
    background = real_noisy / real_std  # std-normalised real VGGish background audio

    def video(row_seed: list[int], segments, labels) -> tuple[np.ndarray, np.ndarray]:
        video_rng = np.random.default_rng(row_seed)
        v, a = synthetic_features.synthesize_video(
            video_rng, float(ann.AVE_SNIPPETS), segments, labels, structure, config, conditions
        )
        bg = background[video_rng.integers(len(background))]
        return v, (a + config.real_audio_gain * bg).astype(np.float32)

    def write(tmp: Path) -> dict:
        (tmp / "Annotations.txt").write_text(
            "\n".join(header + [data_lines[r] for r in rows.tolist()]) + "\n"
        )
        for s in AVE_SPLITS:
            # Keep each split's own order (the split files' order), remapped to the new rows.
            order = [new_index[int(r)] for r in orders[s].tolist() if int(r) in new_index]
            _h5_write(tmp / f"{s}_order.h5", ann.AVE_ORDER_KEY, np.asarray(order, np.int64))
        visual = np.zeros((len(rows), ann.AVE_SNIPPETS, config.visual_dim), np.float32)
        audio = np.zeros((len(rows), ann.AVE_SNIPPETS, config.audio_dim), np.float32)
        for i, row in enumerate(rows.tolist()):
            start, end = int(real.starts[row]), int(real.ends[row])
            segments = [(float(start), float(end))] if end > start else []
            visual[i], audio[i] = video(
                [seed, 11, row], segments, [int(real.classes[row])] * len(segments)
            )
        _h5_write(tmp / "visual_feature_vec.h5", ann.AVE_H5_KEY, visual)
        _h5_write(tmp / "audio_feature.h5", ann.AVE_H5_KEY, audio)
        nv = np.zeros((len(noisy_rows), ann.AVE_SNIPPETS, config.visual_dim), np.float32)
        na = np.zeros((len(noisy_rows), ann.AVE_SNIPPETS, config.audio_dim), np.float64)
        for i, row in enumerate(noisy_rows.tolist()):
            video_rng = np.random.default_rng([seed, 13, row])
            v, a = synthetic_features.synthesize_video(
                video_rng, float(ann.AVE_SNIPPETS), [], [], structure, config, conditions
            )
            nv[i] = v
            # The background-only videos keep their own real audio, plus synthetic noise.
            na[i] = a + config.real_audio_gain * background[row]
        _h5_write(tmp / "visual_feature_noisy.h5", ann.AVE_H5_KEY, nv)
        _h5_write(tmp / "audio_feature_noisy.h5", ann.AVE_H5_KEY, na)
        # All background; the background column is the subset's class count (28 = the real file).
        num_sub_classes = len({int(real.classes[r]) for r in rows.tolist()})
        labels = np.zeros((len(noisy_rows), num_sub_classes + 1), noisy_labels.dtype)
        labels[:, -1] = 1
        _h5_write(tmp / "labels_noisy.h5", ann.AVE_H5_KEY, labels)
        _save_structure(tmp, structure)
        return {
            "flavour": "ave",
            "seed": seed,
            "annotations": str(folder),
            "params": config.to_dict(),
            "classes": _structure_json(structure, real.class_names),
            "rows": rows.tolist(),
            "noisy_rows": noisy_rows.tolist(),
            "counts": {s: int(len(picked[s])) for s in AVE_SPLITS}
            | {"noisy": int(len(noisy_rows))},
            "real_audio_std": real_std,
            "build": "avloc build-data ave --data-dir DATA --manual-dir {out} [--weak]",
        }

    return _write_atomically(Path(out), overwrite, write)


def make_benchmark(flavour: str, out, **kwargs) -> dict:
    if flavour == "activitynet12":
        return make_activitynet12(out, **kwargs)
    if flavour == "ave":
        return make_ave(out, **kwargs)
    raise ValueError(f"unknown flavour {flavour!r}; expected one of {FLAVOURS}")
