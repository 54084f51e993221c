"""What extraction writes and reads back: the feature arrays, the manifest (the cache),
and the list of failures.

    OUT/visual/<id>.npy, OUT/audio/<id>.npy   the arrays (written atomically)
    OUT/manifest.json                         {"format", "version", "videos": {id: entry}}
    OUT/failures.json                         {"format", "version", "failures": [...]}

A video's content key (`file_key`) and the extractor identity in its entry decide
whether it is extracted again; the entry also holds the content keys of its two arrays,
so an entry is only trusted while its arrays are the ones it describes (a rerun that
was killed after rewriting an array, before its entry, never passes off the new array
as the old one).
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.common import io

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "avloc-features"
FAILURES_FILE = "failures.json"
FAILURES_FORMAT = "avloc-extraction-failures"
VISUAL_DIR = "visual"
AUDIO_DIR = "audio"
_KEY_BYTES = 1 << 20  # the head and tail of a file that go into its content key


def file_key(path: Path | str) -> str:
    """'sha256:<hex>' of a file's size, first MiB and last MiB: cheap on long videos, and
    it changes when the file is re-encoded, cut or replaced (an edit that keeps the size
    and touches neither end would go unnoticed)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        digest.update(f.read(_KEY_BYTES))
        if size > 2 * _KEY_BYTES:
            f.seek(size - _KEY_BYTES)
        digest.update(f.read(_KEY_BYTES))
    return "sha256:" + digest.hexdigest()


def read_manifest(out_dir: Path) -> dict[str, Any]:
    """The manifest of `out_dir` ({"format", "version", "videos": {id: entry}}); an
    empty one if there is none or it is unreadable (then nothing is reused)."""
    path = Path(out_dir) / MANIFEST_FILE
    empty: dict[str, Any] = {"format": MANIFEST_FORMAT, "version": 1, "videos": {}}
    if not path.exists():
        return empty
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError):
        return empty
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest.get("videos"), dict):
        return empty
    return manifest


def is_features_folder(path: Path | str) -> bool:
    """Whether `path` is a folder that `extract_features` wrote (it has a manifest)."""
    return (Path(path) / MANIFEST_FILE).is_file()


def read_features_folder(out_dir: Path | str) -> list[ExtractedVideo]:
    """Every video of a folder that `extract_features` wrote, in manifest order, for
    reusing its features (`avloc localize FEATURES_DIR`). Unlike `read_manifest`, which
    falls back to an empty cache, a manifest that is missing, unreadable or not this
    format, or an entry whose arrays are missing, is a ValueError naming the file."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST_FILE
    expected = f"a folder written by `avloc extract-features` ({MANIFEST_FILE}, visual/, audio/)"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} does not exist; expected {expected}") from None
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read it as JSON ({err}); expected {expected}") from None
    videos = manifest.get("videos") if isinstance(manifest, dict) else None
    if manifest.get("format") != MANIFEST_FORMAT or not isinstance(videos, dict):
        raise ValueError(f"{path}: not an extraction manifest; expected {expected}")
    if not videos:
        raise ValueError(f"{path}: lists no video; expected {expected} with at least one")
    found = []
    for video_id, entry in videos.items():
        fields = ["visual", "audio", "visual_shape", "audio_shape", "duration", "snippets"]
        fields += ["seconds_per_snippet", "source"]
        missing = [f for f in fields if f not in entry]
        if missing:
            raise ValueError(f"{path}: video {video_id!r} lacks {', '.join(missing)}")
        for what in ("visual", "audio"):
            if not (out_dir / entry[what]).is_file():
                raise ValueError(
                    f"{path}: the {what} features of video {video_id!r}, "
                    f"{out_dir / entry[what]}, do not exist"
                )
        found.append(extracted(video_id, out_dir, entry, cached=True))
    return found


def save_array(path: Path, array: np.ndarray) -> str:
    """np.save to a temporary sibling, then an atomic rename: never half-written. Returns
    the array file's content key (`file_key`)."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npy")
    try:
        np.save(tmp, array)
        key = file_key(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return key


def remove_temporaries(out_dir: Path, video_id: str) -> None:
    """The temporary array files of `video_id` that a killed run left behind (never
    under a final name, but clutter); call it only for videos this process writes."""
    for folder in (VISUAL_DIR, AUDIO_DIR):
        pattern = str(out_dir / folder / f".{glob.escape(video_id)}.tmp-*.npy")
        for leftover in glob.glob(pattern):
            Path(leftover).unlink(missing_ok=True)


@dataclasses.dataclass
class ExtractedVideo:
    """One video's feature files and its manifest entry."""

    video_id: str
    source: Path
    visual: Path
    audio: Path
    entry: dict[str, Any]
    cached: bool

    @property
    def duration(self) -> float:
        """The video's length in seconds (its decoded video stream)."""
        return float(self.entry["duration"])

    @property
    def grid_seconds(self) -> float:
        """The time the snippet grid covers: T x 0.64 s (the tail shorter than one
        snippet has no features), the time axis of the video's CAS."""
        return float(self.entry["snippets"]) * float(self.entry["seconds_per_snippet"])


@dataclasses.dataclass
class Failure:
    """A video that could not be extracted (with `fail_fast=False`): its id, its path
    and the one-line reason."""

    video_id: str
    path: Path
    reason: str

    def as_json(self) -> dict[str, str]:
        return {"id": self.video_id, "path": str(self.path), "reason": self.reason}


def read_failures(out_dir: Path | str) -> list[dict[str, str]]:
    """The entries of `out_dir/failures.json` ({"id", "path", "reason"}); none if it is
    missing or unreadable."""
    path = Path(out_dir) / FAILURES_FILE
    try:
        payload = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    failures = payload.get("failures") if isinstance(payload, dict) else None
    if not isinstance(failures, list):
        return []
    return [f for f in failures if isinstance(f, dict) and isinstance(f.get("id"), str)]


def update_failures(
    out_dir: Path, failures: Sequence[Failure], succeeded: Iterable[str]
) -> Path | None:
    """Rewrites `out_dir/failures.json` (atomically): the earlier entries less the ids
    that succeeded or failed again now, plus `failures`. Not written when it would be
    empty and there is none yet; returns its path when it exists afterwards."""
    done = set(succeeded) | {f.video_id for f in failures}
    kept = [f for f in read_failures(out_dir) if f["id"] not in done]
    return write_failures(out_dir, kept + [f.as_json() for f in failures])


def write_failures(out_dir: Path, failures: list[dict[str, str]]) -> Path | None:
    """`out_dir/failures.json` with `failures` (atomically); not written when empty and
    there is none yet. Its path when it exists afterwards."""
    path = out_dir / FAILURES_FILE
    if not failures and not path.exists():
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    io.atomic_write_json(path, {"format": FAILURES_FORMAT, "version": 1, "failures": failures})
    return path


def arrays_intact(entry: Mapping[str, Any], out_dir: Path) -> bool:
    """Whether both arrays of a manifest entry exist and (when the entry records their
    content keys, as every entry since they were added does) are the ones it describes."""
    for what in ("visual", "audio"):
        relative = entry.get(what)
        if not isinstance(relative, str) or not (out_dir / relative).is_file():
            return False
        key = entry.get(f"{what}_key")
        if key is not None and file_key(out_dir / relative) != key:
            return False
    return True


def cached(entry: Mapping[str, Any] | None, key: str, identity: Mapping, out_dir: Path) -> bool:
    """Whether `entry` is a finished extraction of the video whose content key is `key`
    by the extractor of `identity`, with its arrays intact."""
    return (
        entry is not None
        and entry.get("key") == key
        and entry.get("extractor") == identity
        and arrays_intact(entry, out_dir)
    )


def extracted(video_id: str, out_dir: Path, entry: dict, cached: bool) -> ExtractedVideo:
    return ExtractedVideo(
        video_id,
        Path(entry["source"]),
        out_dir / entry["visual"],
        out_dir / entry["audio"],
        entry,
        cached,
    )
