"""From video files to feature files: decode, run I3D and VGGish, align, write.

    extractor = load_extractor(WEIGHTS_DIR, flow=False)
    result = extract_features(["a.mp4", "b.mkv"], "features/", extractor)

writes, per video (id = the file name without its extension):

    features/visual/<id>.npy   float32 [T, 1024] I3D RGB, or [T, 2048] RGB then flow
                               (the W-TALC "JOINT" layout) with flow=True
    features/audio/<id>.npy    float32 [T, 128] VGGish, on the visual snippet grid
    features/manifest.json     per video: source, size, mtime, content key, duration,
                               fps, frames, snippets, audio samples, extractor identity,
                               the content keys of the two arrays

which is what `avloc build-data generic --visual features/visual --audio features/audio`
and `avloc predict --visual ... --audio ...` read. The snippet grid and the audio
alignment are in `align`; probing in `probing`, decoding in `media`; optical flow in
`flow`. This module is the orchestration; its parts:

    decode      a background thread decodes (and computes the flow of) the next chunk of
                frames into a bounded queue while the main thread runs the networks, so
                decoding overlaps compute
    networks    each network jitted once per fixed batch shape and sharded over the
                devices (batch split on its leading axis, parameters replicated); the
                last batch is padded and its padding rows dropped
    records     the arrays, the manifest (the cache) and failures.json
    shards      a run split over processes or hosts: the assignment by duration, the
                manifest parts, their merge

Their public names are re-exported here.

Resuming: every array is written to a temporary file and renamed into place, and the
manifest (or, in a sharded run, the shard's manifest part) is rewritten atomically
after each video, so a run killed at any moment leaves complete videos and no partial
file; the same command run again extracts only the videos without a finished entry.

Failures: with `fail_fast=False`, a video that cannot be probed or decoded, has no audio
(without `allow_missing_audio`) or is shorter than one snippet is recorded in
`out_dir/failures.json` ({"format", "failures": [{"id", "path", "reason"}]}, written
atomically; in a sharded run, in the shard's part until the merge) and the others go
on; a later run that extracts (or finds cached) a failed video removes its entry, and
the manifest never lists a failed video. The default, `fail_fast=True`, raises the
first `MediaError` instead (a bad file found while probing: before any work).

Cache: a video is not decoded again when an entry for it (in the manifest or any
manifest part) has its content key (sha256 of its size, first and last MiB; cheap, and
it survives copies, unlike mtime) and the extractor identity (weights and settings), and
both its arrays are there with the content keys the entry recorded.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.common import io
from avloc_jax.extraction import align, media, shards
from avloc_jax.extraction.decode import (
    QUEUE_DEPTH,
    ExtractionStats,
    Job,
    decode_events,
    one_line,
    prefetch,
)
from avloc_jax.extraction.networks import (
    DEFAULT_AUDIO_BATCH_SIZE,
    DEFAULT_BATCH_SIZE,
    I3D_FEATURES,
    PIPELINE_VERSION,
    VGGISH_FEATURES,
    FeatureExtractor,
    Network,
    ShardedApply,
    image_network,
    load_extractor,
    weights_id,
)
from avloc_jax.extraction.records import (
    AUDIO_DIR,
    FAILURES_FILE,
    FAILURES_FORMAT,
    MANIFEST_FILE,
    MANIFEST_FORMAT,
    VISUAL_DIR,
    ExtractedVideo,
    Failure,
    cached,
    extracted,
    file_key,
    is_features_folder,
    read_failures,
    read_features_folder,
    read_manifest,
    remove_temporaries,
    save_array,
    update_failures,
)

__all__ = [
    "AUDIO_DIR",
    "DEFAULT_AUDIO_BATCH_SIZE",
    "DEFAULT_BATCH_SIZE",
    "FAILURES_FILE",
    "FAILURES_FORMAT",
    "I3D_FEATURES",
    "MANIFEST_FILE",
    "MANIFEST_FORMAT",
    "PIPELINE_VERSION",
    "VGGISH_FEATURES",
    "VISUAL_DIR",
    "ExtractedVideo",
    "ExtractionResult",
    "ExtractionStats",
    "Failure",
    "FeatureExtractor",
    "Network",
    "ShardedApply",
    "extract_features",
    "file_key",
    "image_network",
    "is_features_folder",
    "load_extractor",
    "one_line",
    "prefetch",
    "read_failures",
    "read_features_folder",
    "read_manifest",
    "video_ids",
    "weights_id",
]


@dataclasses.dataclass
class ExtractionResult:
    videos: list[ExtractedVideo]
    stats: ExtractionStats
    manifest: Path
    failures: list[Failure] = dataclasses.field(default_factory=list)
    failures_file: Path | None = None  # written when anything failed (now or before)
    shard: shards.Shard | None = None  # the shard extracted, when sharded
    other_shards: int = 0  # videos left to the other shards


def video_ids(videos: Sequence[Path | str], given: Sequence[str | None] | None = None) -> list[str]:
    """Each video's id: `given[i]` when there is one (e.g. from a list file), else its
    file name without the extension. A ValueError naming both paths if two different
    files would share an id (their feature files would collide); the same file twice
    under the same id is fine (it is extracted once). An id must be a plain file name."""
    given = list(given) if given is not None else [None] * len(videos)
    if len(given) != len(videos):
        raise ValueError(f"{len(given)} ids for {len(videos)} videos")
    ids = [str(g) if g is not None else Path(v).stem for v, g in zip(videos, given)]
    seen: dict[str, Path] = {}
    for video_id, path in zip(ids, videos):
        if not video_id or video_id in (".", "..") or "/" in video_id or "\\" in video_id:
            raise ValueError(f"{path}: its id {video_id!r} is not a plain file name")
        if video_id in seen and Path(seen[video_id]).resolve() != Path(path).resolve():
            raise ValueError(
                f"{seen[video_id]} and {path} would both be written as {video_id!r}: "
                "rename one of them (or give them different ids)"
            )
        seen[video_id] = Path(path)
    return ids


class _ManifestLedger:
    """Where one process records its videos: OUT/manifest.json itself (a sharded run
    records them in its part, `shards.Part`, which has the same methods)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.path = out_dir / MANIFEST_FILE
        self.manifest = read_manifest(out_dir)
        self._changed = False

    def add(self, video_id: str, entry: dict[str, Any]) -> None:
        if self.manifest["videos"].get(video_id) != entry:
            self.manifest["videos"][video_id] = entry
            self._changed = True

    def fail(self, failure: Failure) -> None:  # the manifest never lists a failed video
        if self.manifest["videos"].pop(failure.video_id, None) is not None:
            self._changed = True

    def write(self) -> None:
        if self._changed:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            io.atomic_write_json(self.path, self.manifest)
            self._changed = False


def _known_entries(out_dir: Path, manifest: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every entry that `out_dir` holds for each video id, from manifest parts (a
    sharded run's, finished or not) and its `manifest` (as read at the start): the
    cache's candidates."""
    known: dict[str, list[dict[str, Any]]] = {}
    for video_id, entry in shards.part_entries(out_dir):
        known.setdefault(video_id, []).append(entry)
    for video_id, entry in manifest["videos"].items():
        known.setdefault(video_id, []).append(entry)
    return known


def extract_features(
    videos: Iterable[Path | str],
    out_dir: Path | str,
    extractor: FeatureExtractor,
    *,
    flow: bool = False,
    batch_size: int | None = None,
    cache: bool = True,
    progress: bool = True,
    allow_missing_audio: bool = False,
    notice: media.Notice = media.warn,
    ids: Sequence[str | None] | None = None,
    fail_fast: bool = True,
    shard: shards.Shard | None = None,
) -> ExtractionResult:
    """Features of `videos` under `out_dir` (layout in the module doc), in input order.

    Every video to extract is probed first, so that a bad file (see `media.probe`)
    fails before any work, with a `MediaError` naming it. A video with a finished entry
    (see the module doc) is reused unless `cache` is False.

    Args:
      ids: each video's id (None: its file name without the extension); see `video_ids`.
      fail_fast: raise the first `MediaError` (the default). False: record the bad
        video in `result.failures` and `out_dir/failures.json`, and go on (module doc).
      flow: also run the flow stream (visual = [RGB, flow], 2048-d with I3D); needs
        `extractor.flow` and OpenCV's contrib modules.
      batch_size: snippets per decoded chunk (default: the extractor's).
      allow_missing_audio: a video without an audio track gets the features of silence
        (with a warning) instead of a `MediaError`.
      shard: extract only this shard's videos (`shards.plan`) and record them in its
        manifest part instead of manifest.json (`shards.merge` merges the parts).
    """
    paths = [Path(v) for v in videos]
    out_dir = Path(out_dir)
    if flow and extractor.flow is None:
        raise ValueError("flow=True needs an extractor with a flow network (load it with flow)")
    if flow:  # a missing OpenCV fails here, before any work
        from avloc_jax.extraction import flow as optical_flow

        optical_flow.tvl1()
    if batch_size is not None:
        extractor = dataclasses.replace(extractor, batch_size=int(batch_size))
    ids = video_ids(paths, ids)
    path_of = dict(zip(reversed(ids), reversed(paths)))  # the first path of each id
    unique = list(dict.fromkeys(ids))
    identity = extractor.identity(flow)
    ledger: _ManifestLedger | shards.Part
    if shard is None:
        mine, ledger = unique, _ManifestLedger(out_dir)
    else:
        shards.check_no_other_run(out_dir, shard)
        plan = shards.plan(unique, [path_of[v] for v in unique], shard)
        mine, ledger = [unique[p] for p in plan.positions], shards.Part(out_dir, plan, identity)
    if cache:  # an unsharded run's ledger has read the manifest already
        manifest = (
            ledger.manifest if isinstance(ledger, _ManifestLedger) else read_manifest(out_dir)
        )
        known = _known_entries(out_dir, manifest)
    else:
        known = {}
    stats = ExtractionStats()
    started = time.perf_counter()

    results: dict[str, ExtractedVideo] = {}
    failures: dict[str, Failure] = {}
    jobs: list[Job] = []
    for video_id in mine:
        path = path_of[video_id]
        try:
            media.check_file(path)
            key = file_key(path)
            entry = next(
                (e for e in known.get(video_id, []) if cached(e, key, identity, out_dir)), None
            )
            if entry is not None:
                results[video_id] = extracted(video_id, out_dir, entry, cached=True)
                ledger.add(video_id, entry)
                stats.cached += 1
                continue
            info = media.probe(path)
            has_audio = media.require_audio(info, allow_missing_audio, notice)
        except (media.MediaError, OSError) as err:
            if fail_fast:
                raise
            failures[video_id] = Failure(video_id, path, one_line(err))
            ledger.fail(failures[video_id])
            notice(f"warning: {video_id} failed, the others go on: {one_line(err)}")
            continue
        jobs.append(Job(video_id, path, info, has_audio, key))

    if jobs:
        ledger.write()  # cached entries (from other files) and early failures
        (out_dir / VISUAL_DIR).mkdir(parents=True, exist_ok=True)
        (out_dir / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
        for job in jobs:
            remove_temporaries(out_dir, job.video_id)
        _run(
            jobs,
            out_dir,
            extractor,
            flow,
            identity,
            ledger,
            results,
            stats,
            progress,
            notice,
            failures=None if fail_fast else failures,
        )
    ledger.write()
    stats.failed = len(failures)
    if shard is None:
        failures_file = update_failures(out_dir, list(failures.values()), results)
    else:
        failures_file = ledger.path if failures else None
    stats.wall_seconds = time.perf_counter() - started
    return ExtractionResult(
        [results[v] for v in unique if v in results],
        stats,
        ledger.path,
        list(failures.values()),
        failures_file,
        shard,
        len(unique) - len(mine),
    )


def _run(
    jobs: Sequence[Job],
    out_dir: Path,
    extractor: FeatureExtractor,
    flow: bool,
    identity: dict[str, Any],
    ledger: _ManifestLedger | shards.Part,
    results: dict[str, ExtractedVideo],
    stats: ExtractionStats,
    progress: bool,
    notice: media.Notice,
    failures: dict[str, Failure] | None = None,
) -> None:
    """Decodes `jobs` in a thread and runs the networks here; writes each video. With a
    `failures` dict, a video that fails to decode is recorded there and skipped."""
    from avloc_jax.common.progress import ProgressBar

    estimate = sum(int(round((j.info.duration or 0.0) * align.FPS)) for j in jobs)
    bar = ProgressBar(
        estimate or None,
        desc="extract" + (" (flow)" if flow else ""),
        unit="frame",
        enabled=None if progress else False,
    )
    rgb: list[np.ndarray] = []
    flows: list[np.ndarray] = []
    events = prefetch(
        decode_events(jobs, extractor, flow, stats, notice, fail_fast=failures is None),
        QUEUE_DEPTH,
        stats,
    )
    try:
        for event in events:
            if event[0] == "chunk":
                _, job, frames, fields = event
                count = len(frames) // align.SNIPPET_FRAMES
                if count:
                    shape = (count, align.SNIPPET_FRAMES)
                    start = time.perf_counter()
                    used = count * align.SNIPPET_FRAMES
                    rgb.append(extractor.rgb(frames[:used].reshape(shape + frames.shape[1:])))
                    if fields is not None:
                        assert extractor.flow is not None
                        flow_start = time.perf_counter()
                        flows.append(
                            extractor.flow(fields[:used].reshape(shape + fields.shape[1:]))
                        )
                        stats.flow_network_seconds += time.perf_counter() - flow_start
                    stats.network_seconds += time.perf_counter() - start
                stats.frames += len(frames)
                bar.update(len(frames), video=job.video_id)
                continue
            if event[0] == "failed":
                _, job, reason = event
                assert failures is not None
                failures[job.video_id] = Failure(job.video_id, job.path, reason)
                ledger.fail(failures[job.video_id])
                ledger.write()
                notice(f"warning: {job.video_id} failed, the others go on: {reason}")
                rgb, flows = [], []
                continue
            _, job, reader, examples, num_samples = event
            start = time.perf_counter()
            snippets = int(sum(len(c) for c in rgb))
            if snippets != align.num_snippets(reader.num_frames):
                raise AssertionError(
                    f"{job.path}: {snippets} snippets for {reader.num_frames} frames"
                )
            audio = align.align_audio(extractor.audio(examples), snippets)
            stats.network_seconds += time.perf_counter() - start
            stats.audio_network_seconds += time.perf_counter() - start
            visual = np.concatenate(rgb).astype(np.float32)
            if flow:
                visual = np.concatenate([visual, np.concatenate(flows)], axis=1)
            rgb, flows = [], []
            entry = _write_video(out_dir, job, reader, visual, audio, num_samples, identity)
            ledger.add(job.video_id, entry)
            ledger.write()
            results[job.video_id] = extracted(job.video_id, out_dir, entry, cached=False)
            stats.extracted += 1
            stats.audio_duration += num_samples / align.SAMPLE_RATE
    finally:
        events.close()  # stops the decoding thread now, also on an error
        bar.close()


def _write_video(
    out_dir: Path,
    job: Job,
    reader: media.VideoReader,
    visual: np.ndarray,
    audio: np.ndarray,
    num_samples: int,
    identity: dict[str, Any],
) -> dict[str, Any]:
    """Writes one video's arrays (atomically) and returns its manifest entry."""
    visual_rel = f"{VISUAL_DIR}/{job.video_id}.npy"
    audio_rel = f"{AUDIO_DIR}/{job.video_id}.npy"
    visual_key = save_array(out_dir / visual_rel, visual)
    audio_key = save_array(out_dir / audio_rel, audio)
    stat = job.path.stat()
    return {
        "source": str(job.path.resolve()),
        "size": stat.st_size,
        "mtime": stat.st_mtime,
        "key": job.key,
        "duration": reader.duration,
        "fps": align.FPS,
        "source_fps": job.info.average_fps,
        "variable_frame_rate": reader.variable_frame_rate,
        "rotation": job.info.rotation,
        "frames": reader.num_frames,
        "snippets": len(visual),
        "seconds_per_snippet": align.snippet_seconds(),
        "audio_samples": num_samples,
        "audio_track": "present" if job.has_audio else "missing: features of silence",
        "visual": visual_rel,
        "audio": audio_rel,
        "visual_shape": list(visual.shape),
        "audio_shape": list(audio.shape),
        "visual_key": visual_key,
        "audio_key": audio_key,
        "extractor": identity,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
