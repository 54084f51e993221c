"""Extraction over several processes or hosts: which videos each shard extracts, the
manifest part that each shard writes, and the merge of the parts into manifest.json.

    avloc extract-features VIDEOS --shard I/N --out OUT ...   shard I of N (or one process
                                                              per host under jax.distributed:
                                                              I, N = its index and count)
    OUT/manifest.part-0000I-of-0000N.json                     shard I's entries and failures
    avloc extract-features --merge OUT                        manifest.json, failures.json
                                                              (process 0 merges by itself
                                                              under jax.distributed)

Assignment: every process reads the duration of every video from its container headers
(nothing is decoded), then deals the videos out largest first, each to the shard with the
least work so far (ties: the lower shard index; equal durations: input order). The same
inputs give the same assignment in every process without any communication, and the
shards finish close together.

A part holds its shard's finished entries and failures, the ids assigned to it with their
input positions, the extractor identity, and digests of the run's id list and of the
whole assignment. It is rewritten atomically after each video, so that a killed shard
resumes from it. `merge` checks that every part of the run is there, finished and
consistent with the others before it writes manifest.json and failures.json
(atomically). The parts stay: a shard rerun later can be merged again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import json
import math
import re
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.common import io
from avloc_jax.common.wording import plural, some
from avloc_jax.extraction import media, records

PART_FORMAT = "avloc-features-part"
PART_GLOB = "manifest.part-*-of-*.json"
_PART_NAME = re.compile(r"manifest\.part-(\d+)-of-(\d+)\.json")
_HEADER_THREADS = 8  # container headers read at once while planning (I/O bound)


class PartsError(ValueError):
    """Manifest parts that cannot be merged, or a run that would mix with other parts."""


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count)."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def part_name(self) -> str:
        return f"manifest.part-{self.index:05d}-of-{self.count:05d}.json"


def parse_shard(text: str) -> Shard:
    """'I/N' as a `Shard`; a ValueError saying what is expected otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or int(match[2]) < 1 or int(match[1]) >= int(match[2]):
        raise ValueError(f"--shard {text!r}: expected I/N with 0 <= I < N (e.g. 0/4 to 3/4)")
    return Shard(int(match[1]), int(match[2]))


def assign(durations: Sequence[float | None], count: int) -> list[int]:
    """The shard of each video: largest first, each onto the shard with the least total
    duration so far (ties: the lower index; equal durations: input order). An unknown
    duration counts as 0."""
    seconds = [float(d) if d is not None and math.isfinite(d) and d > 0 else 0.0 for d in durations]
    loads = [(0.0, shard) for shard in range(count)]
    shards = [0] * len(seconds)
    for position in sorted(range(len(seconds)), key=lambda i: (-seconds[i], i)):
        load, shard = heapq.heappop(loads)
        shards[position] = shard
        heapq.heappush(loads, (load + seconds[position], shard))
    return shards


def digest(value: Any) -> str:
    """A short content digest of a JSON-able value."""
    return "sha256:" + hashlib.sha256(json.dumps(value).encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class Plan:
    """Which shard extracts each video of a run (`assignment`, in input order)."""

    shard: Shard
    ids: tuple[str, ...]
    assignment: tuple[int, ...]

    @property
    def positions(self) -> list[int]:
        """The input positions of this shard's videos."""
        return [i for i, s in enumerate(self.assignment) if s == self.shard.index]


def plan(ids: Sequence[str], paths: Sequence[Path], shard: Shard) -> Plan:
    """The assignment of the videos `ids` (unique) at `paths` to `shard.count` shards,
    balanced by their header durations (`media.header_duration`)."""
    if shard.count == 1:
        durations: list[float | None] = [None] * len(ids)
    else:
        with ThreadPoolExecutor(_HEADER_THREADS) as pool:
            durations = list(pool.map(media.header_duration, paths))
    return Plan(shard, tuple(ids), tuple(assign(durations, shard.count)))


def find_parts(out_dir: Path) -> dict[int, dict[int, Path]]:
    """The manifest parts in `out_dir`: shard count -> {shard index: path}."""
    found: dict[int, dict[int, Path]] = {}
    for path in sorted(Path(out_dir).glob(PART_GLOB)):
        match = _PART_NAME.fullmatch(path.name)
        if match:
            found.setdefault(int(match[2]), {})[int(match[1])] = path
    return found


def check_no_other_run(out_dir: Path, shard: Shard) -> None:
    """A PartsError when `out_dir` holds parts of a run in another number of shards (a
    merge could not tell which belong together)."""
    others = {n: paths for n, paths in find_parts(out_dir).items() if n != shard.count}
    if others:
        names = [p.name for paths in others.values() for p in paths.values()]
        counts = " and ".join(str(n) for n in sorted(others))
        raise PartsError(
            f"{out_dir} holds the manifest parts of a run in {counts} shards "
            f"({some(names, 3)}); a run in "
            f"{shard.count} shards would mix with them: merge them first (avloc "
            f"extract-features --merge {out_dir}), then delete them"
        )


def part_entries(out_dir: Path) -> list[tuple[str, dict[str, Any]]]:
    """(id, entry) of every readable part in `out_dir`: candidates for the cache."""
    found: list[tuple[str, dict[str, Any]]] = []
    for paths in find_parts(out_dir).values():
        for path in paths.values():
            try:
                videos = json.loads(path.read_text()).get("videos")
            except (OSError, ValueError, AttributeError):
                continue
            if isinstance(videos, dict):
                found.extend((v, e) for v, e in videos.items() if isinstance(e, dict))
    return found


class Part:
    """The ledger of one shard: its finished entries and failures, rewritten atomically
    (`write`) after each video."""

    def __init__(self, out_dir: Path, plan: Plan, identity: Mapping[str, Any]):
        self.path = Path(out_dir) / plan.shard.part_name
        self.data: dict[str, Any] = {
            "format": PART_FORMAT,
            "version": 1,
            "shard": plan.shard.index,
            "shards": plan.shard.count,
            "inputs": digest(list(plan.ids)),
            "assignment": digest(list(plan.assignment)),
            "extractor": dict(identity),
            "assigned": [[p, plan.ids[p]] for p in plan.positions],
            "videos": {},
            "failures": [],
        }

    def add(self, video_id: str, entry: dict[str, Any]) -> None:
        self.data["videos"][video_id] = entry

    def fail(self, failure: records.Failure) -> None:
        self.data["videos"].pop(failure.video_id, None)
        kept = [f for f in self.data["failures"] if f["id"] != failure.video_id]
        self.data["failures"] = kept + [failure.as_json()]

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        io.atomic_write_json(self.path, self.data)


def unmerged_parts(out_dir: Path) -> list[Path]:
    """The parts in `out_dir` written after its manifest.json (or all, without one)."""
    manifest = Path(out_dir) / records.MANIFEST_FILE
    merged_at = manifest.stat().st_mtime_ns if manifest.is_file() else -1
    return [
        path
        for paths in find_parts(out_dir).values()
        for path in paths.values()
        if path.stat().st_mtime_ns > merged_at
    ]


# ----------------------------------------------------------------------------- merging


@dataclasses.dataclass
class Merged:
    """What `merge` wrote."""

    shards: int
    manifest: Path
    videos: int  # entries that came from the parts
    failures: list[dict[str, str]]  # the parts' failures
    failures_file: Path | None


def _load_part(path: Path, shard: Shard) -> dict[str, Any]:
    expected = f"a manifest part of shard {shard} written by `avloc extract-features`"
    try:
        part = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise PartsError(f"{path}: cannot read it as JSON ({err}); expected {expected}") from None
    types = {"extractor": dict, "inputs": str, "assignment": str, "assigned": list}
    types |= {"videos": dict, "failures": list}
    if (
        not isinstance(part, dict)
        or part.get("format") != PART_FORMAT
        or (part.get("shard"), part.get("shards")) != (shard.index, shard.count)
        or any(not isinstance(part.get(k), t) for k, t in types.items())
        or any(
            not isinstance(f, dict) or not isinstance(f.get("id"), str) for f in part["failures"]
        )
    ):
        raise PartsError(f"{path}: not {expected}")
    return part


def _differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k} {a.get(k)!r} against {b.get(k)!r}" for k in keys[:3])


def merge(out_dir: Path | str, count: int | None = None) -> Merged:
    """Merges the parts of one sharded run in `out_dir` (of `count` shards when given)
    into manifest.json and failures.json; see the module doc. Earlier manifest entries
    and failures of videos that are not in the run are kept. A PartsError, before
    anything is written, when a part is missing, unreadable or unfinished, when parts
    disagree (extractor settings, video list, assignment) or share a video, or when an
    entry's arrays are missing or changed."""
    out_dir = Path(out_dir)
    what = "the output folder of `avloc extract-features --shard I/N` runs"
    if not out_dir.is_dir():
        raise PartsError(f"{out_dir}: no such folder; expected {what}")
    found = find_parts(out_dir)
    if count is not None:
        found = {n: paths for n, paths in found.items() if n == count}
    if not found:
        raise PartsError(f"{out_dir} holds no manifest part ({PART_GLOB}); expected {what}")
    if len(found) > 1:
        counts = " and ".join(str(n) for n in sorted(found))
        raise PartsError(
            f"{out_dir} holds the parts of runs in {counts} shards; expected the parts of "
            "one run: delete the stale ones"
        )
    ((count, paths),) = found.items()
    missing = [Shard(i, count) for i in range(count) if i not in paths]
    if missing:
        several = len(missing) > 1
        raise PartsError(
            f"{out_dir} lacks the part{'s' if several else ''} of shard{'s' if several else ''} "
            f"{some([str(m) for m in missing])} "
            f"({missing[0].part_name}{', ...' if several else ''}): run "
            f"{'them' if several else 'it'} first"
        )
    parts = [(paths[i], _load_part(paths[i], Shard(i, count))) for i in range(count)]
    first_path, first = parts[0]
    for path, part in parts[1:]:
        if part["extractor"] != first["extractor"]:
            raise PartsError(
                f"{first_path.name} and {path.name} were extracted with different weights or "
                f"settings ({_differences(first['extractor'], part['extractor'])}): rerun "
                "the shards with the same weights and options"
            )
        if (part["inputs"], part["assignment"]) != (first["inputs"], first["assignment"]):
            raise PartsError(
                f"{first_path.name} and {path.name} come from different runs (another video "
                "list, or hosts that read other durations): rerun every shard with the "
                "same inputs"
            )
    owner: dict[str, Path] = {}
    position: dict[str, int] = {}
    for index, (path, part) in enumerate(parts):
        for entry in part["assigned"]:
            video_id = entry[1]
            if video_id in owner:
                raise PartsError(
                    f"video {video_id!r} is in both {owner[video_id].name} and {path.name}; "
                    "expected each video in one part"
                )
            owner[video_id], position[video_id] = path, int(entry[0])
        done = set(part["videos"]) | {f["id"] for f in part["failures"]}
        left = [v for _, v in part["assigned"] if v not in done]
        if left:
            raise PartsError(
                f"{path.name} is unfinished: {plural(len(left), 'video')} of "
                f"{len(part['assigned'])} not done ({some(left)}): rerun shard {index}/{count} (it "
                "resumes where it stopped)"
            )
        strays = [f["id"] for f in part["failures"] if owner.get(f["id"]) != path]
        if strays:
            raise PartsError(
                f"{path.name}: lists a failure of video {strays[0]!r}, which is not assigned "
                f"to it; rerun shard {index}/{count}"
            )
        for video_id, entry in part["videos"].items():
            if owner.get(video_id) != path or not records.arrays_intact(entry, out_dir):
                raise PartsError(
                    f"{path.name}: video {video_id!r} is not assigned to it or its arrays "
                    f"({entry.get('visual')}, {entry.get('audio')}) are missing or were "
                    f"changed since: rerun shard {index}/{count}"
                )
    manifest = records.read_manifest(out_dir)
    entries = sorted(
        ((position[v], v, e) for _, part in parts for v, e in part["videos"].items()),
        key=lambda item: item[0],
    )
    kept = {v: e for v, e in manifest["videos"].items() if v not in owner}
    manifest["videos"] = kept | {v: e for _, v, e in entries}
    manifest["merged"] = {"shards": count, "inputs": first["inputs"]}
    failures = sorted(
        (f for _, part in parts for f in part["failures"]), key=lambda f: position[f["id"]]
    )
    earlier = [f for f in records.read_failures(out_dir) if f["id"] not in owner]
    io.atomic_write_json(out_dir / records.MANIFEST_FILE, manifest)
    failures_file = records.write_failures(out_dir, earlier + failures)
    return Merged(count, out_dir / records.MANIFEST_FILE, len(entries), failures, failures_file)


# ----------------------------------------------------------------------------- processes


def job_status(codes: Sequence[int]) -> int:
    """One exit status for a job from its processes' statuses: a fatal one (1, 2: the
    highest) before 3 (some videos failed) before 0."""
    fatal = [c for c in codes if c not in (0, 3)]
    return max(fatal) if fatal else max(codes, default=0)


def agree(code: int) -> int:
    """`job_status` of every process's `code` under jax.distributed (a collective: every
    process must call it, so it is also a barrier); `code` itself in one process."""
    import jax

    if jax.process_count() == 1:
        return code
    from jax.experimental import multihost_utils

    gathered = multihost_utils.process_allgather(np.asarray([code], np.int32))
    return job_status([int(c) for c in np.asarray(gathered).reshape(-1)])
