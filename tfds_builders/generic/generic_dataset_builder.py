"""Users' own untrimmed videos as a TFDS dataset.

Inputs (explicit paths or names under the manual dir):
* gt: ActivityNet-format ground truth ``{"database": {video_id: {"subset", "duration",
  "annotations": [{"label", "segment": [start, end]}]}}}`` (``gt.json``);
* visual / audio: folders of ``<video_id>.npy`` ([T, D] float arrays; ``v_<id>.npy``
  accepted); audio is resampled linearly onto the visual snippets when counts differ;
* classes (optional): a text file, one class name per line, fixing the class order;
  otherwise the GT labels sorted alphabetically.

Splits are the GT subsets (``training``/``validation``/``testing``, any ``\\w+`` names).
Roles: train = 'train'/'training'; test = 'test'/'testing', else 'validation'/'val';
val = 'validation'/'val' when it is not the test split, else a held-out part of train.
Pass ``split_roles={'train': ..., 'val': ... or None, 'test': ...}`` to choose. Use a
BuilderConfig name per dataset (``avloc build-data generic --name mydata``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow_datasets as tfds

from avloc_jax.data import annotations as ann
from avloc_jax.data.annotations import DataError
from avloc_jax.data.records import TASK_DETECTION, DatasetMetadata
from tfds_builders import common

TRAIN_NAMES = ("train", "training")
TEST_NAMES = ("test", "testing")
VAL_NAMES = ("validation", "val")


def read_class_list(path: Path) -> tuple[str, ...]:
    """One class per line (blank lines ignored), or a .npy of names."""
    if path.suffix == ".npy":
        return tuple(ann.as_text(x) for x in ann.load_npy(path, "class list").reshape(-1))
    names = tuple(
        line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
    )
    if len(set(names)) != len(names):
        raise DataError(f"{path}: a class name is listed twice")
    return names


def default_roles(subsets: Sequence[str]) -> dict[str, str | None]:
    """Role -> subset name from the usual names (see module doc)."""
    present = list(subsets)
    train = next((s for s in TRAIN_NAMES if s in present), None)
    test = next((s for s in TEST_NAMES + VAL_NAMES if s in present and s != train), None)
    val = next((s for s in VAL_NAMES if s in present and s not in (train, test)), None)
    if train is None or test is None:
        raise DataError(
            f"cannot tell the train and test subsets among {present}; name them "
            "training/validation/testing "
            "or pass split roles (--train-split/--val-split/--test-split)"
        )
    return {"train": train, "val": val, "test": test}


class Generic(common.AvlocBuilder):
    """Untrimmed videos from per-video feature files and an ActivityNet-format GT JSON."""

    name = "generic"
    DESCRIPTION = __doc__
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name="default")]
    INPUTS = {
        "gt": ("gt.json", "ground_truth.json"),
        "visual": ("visual",),
        "audio": ("audio",),
        "classes": ("classes.txt",),
    }

    def __init__(
        self,
        *,
        split_roles: Mapping[str, str | None] | None = None,
        tiou_thresholds: Sequence[float] | None = None,
        **kwargs: Any,
    ):
        self._split_roles = dict(split_roles) if split_roles else None
        self._tiou = tuple(float(t) for t in tiou_thresholds) if tiou_thresholds else None
        super().__init__(**kwargs)

    @classmethod
    def input_names(cls, config_name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return ("gt", "visual", "audio"), ("classes",)

    def _split_generators(self, dl_manager) -> dict[str, Any]:
        paths = self._inputs(dl_manager)
        videos = ann.read_ground_truth_json(paths["gt"])
        subsets = list(dict.fromkeys(v.subset for v in videos))
        for subset in subsets:
            if not re.fullmatch(r"[A-Za-z]\w*", subset):
                raise DataError(
                    f"{paths['gt']}: subset name {subset!r} must be a word (letters, digits, _)"
                )

        if paths["classes"] is not None:
            class_names = read_class_list(paths["classes"])
        else:
            class_names = tuple(sorted({label for v in videos for label in v.labels}))
        index = {name: c for c, name in enumerate(class_names)}
        for v in videos:
            for label in v.labels:
                if label not in index:
                    raise DataError(
                        f"{paths['gt']}: video {v.video_id!r} has label {label!r}, which is not in "
                        "the class list "
                        f"{paths['classes']} ({len(class_names)} "
                        f"class{'es' if len(class_names) != 1 else ''})"
                    )
        if not class_names:
            raise DataError(f"{paths['gt']}: no annotation, so no class")

        roles = self._split_roles or default_roles(subsets)
        for role in ("train", "test"):
            if roles.get(role) not in subsets:
                raise DataError(
                    f"split role {role}={roles.get(role)!r} is not a subset of {paths['gt']}: "
                    f"{subsets}"
                )
        if roles.get("val") is not None and roles["val"] not in subsets:
            raise DataError(
                f"split role val={roles['val']!r} is not a subset of {paths['gt']}: {subsets}"
            )
        heldout = self._heldout_fraction if roles.get("val") is None else 0.0
        meta = DatasetMetadata(
            name=f"{self.name}/{self.builder_config.name}",
            task=TASK_DETECTION,
            class_names=class_names,
            visual_dim=0,
            audio_dim=0,
            # Stored names; "" = held out of train at load time (avloc_jax.data.datasets).
            train_split=roles["train"],
            val_split=roles.get("val") or "",
            test_split=roles["test"],
            **({"tiou_thresholds": self._tiou} if self._tiou else {}),
        )
        self._set_metadata(
            meta,
            common.split_roles_json(roles["train"], roles.get("val"), roles["test"], heldout),
            paths,
        )
        visual = common.FolderStore(paths["visual"])
        audio = common.FolderStore(paths["audio"])
        if not paths["visual"].is_dir() or not paths["audio"].is_dir():
            raise DataError(
                f"visual and audio must be folders of <video_id>.npy: {paths['visual']}, "
                f"{paths['audio']}"
            )
        dims = common.DimTracker()
        return {
            subset: common.generate_with_counts(
                self,
                subset,
                self._generate_examples(
                    subset, [v for v in videos if v.subset == subset], index, visual, audio, dims
                ),
            )
            for subset in subsets
        }

    def _generate_examples(
        self,
        subset: str,
        videos: list[ann.GroundTruthVideo],
        index: Mapping[str, int],
        visual: common.FolderStore,
        audio: common.FolderStore,
        dims: common.DimTracker,
    ) -> Iterator[tuple[str, dict]]:
        num_classes = len(index)
        for video in videos:
            raw = {"visual": visual.get(0, video.video_id), "audio": audio.get(0, video.video_id)}
            missing = [what for what, x in raw.items() if x is None]
            if missing:
                if self._skip_missing:
                    self._note_skipped(subset, video.video_id)
                    continue
                store = visual if missing[0] == "visual" else audio
                raise DataError(
                    f"no {missing[0]} features for video {video.video_id!r} of {subset}; expected "
                    f"{store.candidates(video.video_id)}"
                )
            stores = {"visual": visual, "audio": audio}
            v, a = self.video_features(raw, stores, dims, f"video {video.video_id}")
            classes = np.asarray([index[label] for label in video.labels], np.int32)
            labels = np.zeros(num_classes, np.float32)
            labels[classes] = 1.0
            yield (
                video.video_id,
                common.make_example(
                    video_id=video.video_id,
                    visual=v,
                    audio=a,
                    labels=labels,
                    duration=video.duration,
                    segments=video.segments,
                    segment_labels=classes,
                    snippet_labels=ann.snippet_labels_from_segments(
                        video.segments, classes, video.duration, len(v), num_classes
                    ),
                ),
            )
