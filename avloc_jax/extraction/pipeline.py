"""From video files to feature files: decode, run I3D and VGGish, align, write.

    extractor = load_extractor(WEIGHTS_DIR, flow=False)
    result = extract_features(["a.mp4", "b.mkv"], "features/", extractor)

writes, per video (id = the file name without its extension):

    features/visual/<id>.npy   float32 [T, 1024] I3D RGB, or [T, 2048] RGB then flow
                               (the W-TALC "JOINT" layout) with flow=True
    features/audio/<id>.npy    float32 [T, 128] VGGish, on the visual snippet grid
    features/manifest.json     per video: source, size, mtime, content key, duration,
                               fps, frames, snippets, audio samples, extractor identity

which is what `avloc build-data generic --visual features/visual --audio features/audio`
and `avloc predict --visual ... --audio ...` read. The snippet grid and the audio
alignment are in `align`; decoding in `media`; optical flow in `flow`.

How the work is laid out: a background thread decodes (and computes the flow of) the
next chunk of frames into a bounded queue while the main thread runs the networks, so
decoding overlaps compute. Each network is jitted once per fixed batch shape and
sharded over `jax.devices()` (batch split on its leading axis, parameters replicated);
the last batch is padded and its padding rows dropped. Every video's arrays are written
to a temporary file and renamed into place, and the manifest is rewritten (atomically)
after each video, so an interrupted run leaves complete videos and no partial file.

Failures: with `fail_fast=False`, a video that cannot be probed or decoded, has no audio
(without `allow_missing_audio`) or is shorter than one snippet is recorded in
`out_dir/failures.json` ({"format", "failures": [{"id", "path", "reason"}]}, written
atomically) and the others go on; a later run that extracts (or finds cached) a failed
video removes its entry, and the manifest never lists a failed video. The default,
`fail_fast=True`, raises the first `MediaError` instead (a bad file found while probing:
before any work).

Cache: a video whose content key (sha256 of its size, first and last MiB; cheap, and it
survives copies, unlike mtime) and extractor identity (weights and settings) match its
manifest entry, and whose two arrays exist, is not decoded again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.common import io
from avloc_jax.extraction import align, media

PIPELINE_VERSION = 1  # bumped when the features of the same video and weights change
I3D_FEATURES = 1024
VGGISH_FEATURES = 128
DEFAULT_BATCH_SIZE = 8  # I3D snippets per forward pass (and per decoded chunk)
DEFAULT_AUDIO_BATCH_SIZE = 16  # VGGish examples (0.96 s each) per forward pass
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "avloc-features"
FAILURES_FILE = "failures.json"
FAILURES_FORMAT = "avloc-extraction-failures"
VISUAL_DIR = "visual"
AUDIO_DIR = "audio"
_KEY_BYTES = 1 << 20  # the head and tail of a file that go into its content key
_QUEUE_DEPTH = 2  # decoded chunks waiting for the networks

Network = Callable[[np.ndarray], np.ndarray]


# ----------------------------------------------------------------------------- networks


def _as_variables(variables: Any) -> Any:
    """Flax variables {"params": ...} from either variables or a bare parameter tree."""
    if isinstance(variables, Mapping) and "params" in variables:
        return variables
    return {"params": variables}


class ShardedApply:
    """A jitted forward pass over a fixed batch, sharded over all local devices.

    ``__call__(x)`` takes any number of rows [n, ...] (n >= 1), runs them in batches of
    `batch_size` rows (the last padded with zeros; its padding rows are dropped) and
    returns the outputs [n, D] as NumPy. Batches are dispatched before the first result
    is read, so host-to-device copies overlap compute.

    Args:
      apply_fn: (variables, x [B, ...]) -> [B, D], e.g. a Flax module's ``apply``.
      variables: its variables (or a bare parameter tree), replicated on every device.
      batch_size: rows per forward pass, rounded up to a multiple of the device count.
      preprocess: applied to x on the device before `apply_fn` (e.g. uint8 -> [-1, 1],
        so that 4x fewer bytes cross to the device).
    """

    def __init__(
        self,
        apply_fn: Callable[[Any, Any], Any],
        variables: Any,
        batch_size: int,
        preprocess: Callable[[Any], Any] | None = None,
    ):
        import jax

        from avloc_jax.common import parallel

        mesh = parallel.make_mesh()
        devices = mesh.devices.size
        self.batch_size = max(devices, -(-int(batch_size) // devices) * devices)
        self._rows = parallel.batch_sharded(mesh)
        replicated = parallel.replicated(mesh)
        self._variables = jax.device_put(_as_variables(variables), replicated)
        prep = preprocess or (lambda x: x)
        self._forward = jax.jit(
            lambda v, x: apply_fn(v, prep(x)),
            in_shardings=(replicated, self._rows),
            out_shardings=self._rows,
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        import jax

        x = np.asarray(x)
        if len(x) == 0:
            raise ValueError("ShardedApply needs at least one row")
        pending = []
        for start in range(0, len(x), self.batch_size):
            rows = x[start : start + self.batch_size]
            count = len(rows)
            if count < self.batch_size:
                pad = np.zeros((self.batch_size - count, *rows.shape[1:]), rows.dtype)
                rows = np.concatenate([rows, pad])
            pending.append(
                (self._forward(self._variables, jax.device_put(rows, self._rows)), count)
            )
        return np.concatenate([np.asarray(y)[:count] for y, count in pending]).astype(np.float32)


def image_network(
    apply_fn: Callable[[Any, Any], Any], variables: Any, batch_size: int
) -> ShardedApply:
    """An I3D-like network fed uint8 RGB snippets [B, 16, S, S, 3]; the pixels are scaled
    to [-1, 1] (x / 127.5 - 1) on the device."""
    import jax.numpy as jnp

    return ShardedApply(
        apply_fn,
        variables,
        batch_size,
        preprocess=lambda x: x.astype(jnp.float32) * (2.0 / 255.0) - 1.0,
    )


@dataclasses.dataclass
class FeatureExtractor:
    """The networks of the pipeline, injectable (tests use small stand-ins).

    rgb:      uint8 RGB snippets [B, 16, S, S, 3] -> [B, rgb_dim] (e.g. `image_network`)
    audio:    log-mel examples [N, 96, 64] -> [N, audio_dim]
    log_mel:  (float32 waveform [S] at 16 kHz, sample rate) -> examples [N, 96, 64]
    flow:     optional; flow snippets [B, 16, S, S, 2] in [-1, 1] -> [B, flow_dim]
    weights_id: identifies the weights (part of the cache key)
    short_side / crop_size: frame preprocessing (256 / 224 for I3D)
    batch_size: snippets per decoded chunk
    settings: other settings that change the features (part of the cache key)
    """

    rgb: Network
    audio: Network
    log_mel: Callable[[np.ndarray, int], np.ndarray]
    rgb_dim: int
    audio_dim: int
    weights_id: str
    flow: Network | None = None
    flow_dim: int = 0
    short_side: int = media.SHORT_SIDE
    crop_size: int = media.CROP_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def visual_dim(self, flow: bool) -> int:
        return self.rgb_dim + (self.flow_dim if flow else 0)

    def identity(self, flow: bool) -> dict[str, Any]:
        """What the features depend on besides the video: compared by the cache."""
        return {
            "pipeline_version": PIPELINE_VERSION,
            "weights": self.weights_id,
            "flow": bool(flow),
            "fps": align.FPS,
            "snippet_frames": align.SNIPPET_FRAMES,
            "short_side": self.short_side,
            "crop_size": self.crop_size,
            "sample_rate": align.SAMPLE_RATE,
            "visual_dim": self.visual_dim(flow),
            "audio_dim": self.audio_dim,
            **dict(self.settings),
        }


def weights_id(directories: Sequence[Path]) -> str:
    """A short id of converted weights: the content keys of every file under them."""
    digest = hashlib.sha256()
    for directory in directories:
        for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
            digest.update(str(path.relative_to(directory.parent)).encode())
            digest.update(file_key(path).encode())
    return digest.hexdigest()[:16]


def load_extractor(
    weights_dir: Path | str,
    *,
    flow: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    audio_batch_size: int = DEFAULT_AUDIO_BATCH_SIZE,
    vggish_postprocess: bool = False,
) -> FeatureExtractor:
    """I3D RGB (and flow) and VGGish from the orbax checkpoints that `avloc
    convert-weights` writes under WEIGHTS_DIR/{i3d_rgb, i3d_flow, vggish}/.

    `vggish_postprocess` adds AudioSet's PCA + 8-bit quantisation (needs the PCA file
    converted too); off by default: the raw 128-d embeddings."""
    weights_dir = Path(weights_dir)
    if flow:  # fail on a missing OpenCV before loading anything
        from avloc_jax.extraction import flow as optical_flow

        optical_flow.tvl1()
    if not weights_dir.is_dir():
        raise FileNotFoundError(
            f"weights folder {weights_dir} does not exist: convert the public checkpoints "
            "with `avloc convert-weights` first (docs/extraction.md)"
        )
    needed = ["i3d_rgb", "vggish"] + (["i3d_flow"] if flow else [])
    needed += ["vggish_pca"] if vggish_postprocess else []
    missing = [name for name in needed if not (weights_dir / name).is_dir()]
    if missing:
        raise FileNotFoundError(
            f"weights folder {weights_dir} lacks {', '.join(missing)}/: convert the public "
            "checkpoints into it with `avloc convert-weights` first (docs/extraction.md)"
        )
    # Imported here: the networks are only needed for real extraction; the rest of the
    # pipeline runs with injected stand-ins (tests) without building them.
    from avloc_jax.extraction import i3d, vggish

    rgb_module, rgb_variables = i3d.load_i3d(weights_dir, "rgb")
    audio_module, audio_variables = vggish.load_vggish(weights_dir, postprocess=vggish_postprocess)
    used = [weights_dir / "i3d_rgb", weights_dir / "vggish"]
    flow_network = None
    if flow:
        flow_module, flow_variables = i3d.load_i3d(weights_dir, "flow")
        flow_network = ShardedApply(flow_module.apply, flow_variables, batch_size)
        used.append(weights_dir / "i3d_flow")
    if vggish_postprocess:
        used.append(weights_dir / "vggish_pca")
    return FeatureExtractor(
        rgb=image_network(rgb_module.apply, rgb_variables, batch_size),
        audio=ShardedApply(audio_module.apply, audio_variables, audio_batch_size),
        log_mel=vggish.log_mel_examples,
        rgb_dim=I3D_FEATURES,
        audio_dim=VGGISH_FEATURES,
        weights_id=weights_id(used),
        flow=flow_network,
        flow_dim=I3D_FEATURES if flow else 0,
        batch_size=batch_size,
        settings={"vggish_postprocess": bool(vggish_postprocess)},
    )


# ----------------------------------------------------------------------------- cache


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
        found.append(_extracted(video_id, out_dir, entry, cached=True))
    return found


def _save_array(path: Path, array: np.ndarray) -> None:
    """np.save to a temporary sibling, then an atomic rename: never half-written."""
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.npy")
    try:
        np.save(tmp, array)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ----------------------------------------------------------------------------- decoding


@dataclasses.dataclass
class ExtractionStats:
    """Where the time went (seconds) and how much was done. Decoding runs in a thread
    beside the networks: `wait_seconds` is the time the networks waited for frames."""

    wall_seconds: float = 0.0
    decode_seconds: float = 0.0  # video decoding, resizing, cropping
    flow_seconds: float = 0.0  # TV-L1
    audio_seconds: float = 0.0  # audio decoding and the log-mel front end
    network_seconds: float = 0.0  # all forward passes (incl. transfers); of which:
    flow_network_seconds: float = 0.0  # I3D flow
    audio_network_seconds: float = 0.0  # VGGish
    wait_seconds: float = 0.0
    frames: int = 0  # 25-fps frames extracted
    audio_duration: float = 0.0  # seconds of audio extracted
    extracted: int = 0
    cached: int = 0
    failed: int = 0

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


@dataclasses.dataclass
class ExtractionResult:
    videos: list[ExtractedVideo]
    stats: ExtractionStats
    manifest: Path
    failures: list[Failure] = dataclasses.field(default_factory=list)
    failures_file: Path | None = None  # written when anything failed (now or before)


@dataclasses.dataclass
class _Job:
    video_id: str
    path: Path
    info: media.MediaInfo
    has_audio: bool
    key: str


def _timed(iterator: Iterator[Any], stats: ExtractionStats, field: str) -> Iterator[Any]:
    """`iterator`, adding the time spent producing each item to `stats.<field>`."""
    while True:
        start = time.perf_counter()
        try:
            item = next(iterator)
        except StopIteration:
            return
        finally:
            setattr(stats, field, getattr(stats, field) + time.perf_counter() - start)
        yield item


def _decode_events(
    jobs: Sequence[_Job],
    extractor: FeatureExtractor,
    flow: bool,
    stats: ExtractionStats,
    notice: media.Notice,
    fail_fast: bool = True,
) -> Iterator[tuple]:
    """Runs in the decoding thread: ("chunk", job, frames uint8 [n, S, S, 3], flow
    [n, S, S, 2] | None) per chunk, then ("end", job, reader, examples [N_a, 96, 64],
    audio samples) per video; without `fail_fast`, a video whose decoding raises a
    `MediaError` ends with ("failed", job, reason) instead."""
    from avloc_jax.extraction import flow as optical_flow

    chunk_frames = max(1, int(extractor.batch_size)) * align.SNIPPET_FRAMES
    algorithm = optical_flow.tvl1() if flow else None
    for job in jobs:
        try:
            yield from _video_events(job, extractor, algorithm, chunk_frames, stats, notice)
        except media.MediaError as err:
            if fail_fast:
                raise
            yield "failed", job, one_line(err)


def one_line(err: BaseException | str) -> str:
    """An error message on one line."""
    return " ".join(str(err).split())


def _video_events(
    job: _Job,
    extractor: FeatureExtractor,
    algorithm: Any,
    chunk_frames: int,
    stats: ExtractionStats,
    notice: media.Notice,
) -> Iterator[tuple]:
    """`_decode_events` of one video."""
    from avloc_jax.extraction import flow as optical_flow

    flow = algorithm is not None
    reader = media.VideoReader(
        job.path,
        job.info,
        short_side=extractor.short_side,
        crop_size=extractor.crop_size,
        crop=not flow,  # flow is computed on the whole resized frame, then cropped
        notice=notice,
    )
    frames = _timed(reader.frames(chunk_frames), stats, "decode_seconds")
    if algorithm is None:
        for chunk in frames:
            yield "chunk", job, chunk, None
    else:
        with_flow = optical_flow.with_flow(frames, algorithm)
        while True:
            started, decoded = time.perf_counter(), stats.decode_seconds
            try:
                chunk, fields = next(with_flow)
            except StopIteration:
                break
            # with_flow's time, less the decoding it waited for
            elapsed = time.perf_counter() - started
            stats.flow_seconds += elapsed - (stats.decode_seconds - decoded)
            size = extractor.crop_size
            rgb = np.ascontiguousarray(media.center_crop(chunk, size))
            yield "chunk", job, rgb, np.ascontiguousarray(media.center_crop(fields, size))
    started = time.perf_counter()
    snippets = align.num_snippets(reader.num_frames)
    if snippets == 0:
        raise media.MediaError(
            f"{job.path}: {reader.num_frames} frames decoded; expected at least one "
            f"snippet ({align.SNIPPET_FRAMES} frames at {align.FPS} fps)"
        )
    if job.has_audio:
        samples = media.decode_audio(job.path, align.SAMPLE_RATE, info=job.info)
    else:  # silence (require_audio has warned); fit_waveform pads it
        samples = np.zeros(0, np.float32)
    waveform = align.fit_waveform(samples, snippets, align.SAMPLE_RATE)
    examples = np.asarray(extractor.log_mel(waveform, align.SAMPLE_RATE), np.float32)
    stats.audio_seconds += time.perf_counter() - started
    yield "end", job, reader, examples, len(samples)


def prefetch(
    iterator: Iterator[Any], depth: int, stats: ExtractionStats | None = None
) -> Generator[Any, None, None]:
    """Iterates `iterator` in a background thread, `depth` items ahead (a bounded queue);
    its exceptions are re-raised here. Time spent waiting goes to `stats.wait_seconds`."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: tuple) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in iterator:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as err:  # handed to the consumer
            put(("error", err))
        finally:  # e.g. closes the file being decoded when the consumer stopped early
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=work, name="avloc-decode", daemon=True)
    thread.start()
    try:
        while True:
            start = time.perf_counter()
            kind, value = items.get()
            if stats is not None:
                stats.wait_seconds += time.perf_counter() - start
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        thread.join(timeout=30)


# ----------------------------------------------------------------------------- pipeline


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


def _update_failures(
    out_dir: Path, failures: Sequence[Failure], succeeded: Iterable[str]
) -> Path | None:
    """Rewrites `out_dir/failures.json` (atomically): the earlier entries less the ids
    that succeeded or failed again now, plus `failures`. Not written when it would be
    empty and there is none yet; returns its path when it exists afterwards."""
    path = out_dir / FAILURES_FILE
    earlier = read_failures(out_dir)
    done = set(succeeded) | {f.video_id for f in failures}
    kept = [f for f in earlier if f["id"] not in done] + [f.as_json() for f in failures]
    if not kept and not path.exists():
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    io.atomic_write_json(path, {"format": FAILURES_FORMAT, "version": 1, "failures": kept})
    return path


def _cached(entry: Mapping[str, Any] | None, key: str, identity: Mapping, out_dir: Path) -> bool:
    return (
        entry is not None
        and entry.get("key") == key
        and entry.get("extractor") == identity
        and (out_dir / entry.get("visual", "")).is_file()
        and (out_dir / entry.get("audio", "")).is_file()
    )


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
) -> ExtractionResult:
    """Features of `videos` under `out_dir` (layout in the module doc), in input order.

    Every video to extract is probed first, so that a bad file (see `media.probe`)
    fails before any work, with a `MediaError` naming it. A video whose manifest entry
    matches (see the module doc) is reused unless `cache` is False.

    Args:
      ids: each video's id (None: its file name without the extension); see `video_ids`.
      fail_fast: raise the first `MediaError` (the default). False: record the bad
        video in `result.failures` and `out_dir/failures.json`, and go on (module doc).
      flow: also run the flow stream (visual = [RGB, flow], 2048-d with I3D); needs
        `extractor.flow` and OpenCV's contrib modules.
      batch_size: snippets per decoded chunk (default: the extractor's).
      allow_missing_audio: a video without an audio track gets the features of silence
        (with a warning) instead of a `MediaError`.
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
    identity = extractor.identity(flow)
    manifest = read_manifest(out_dir)
    stats = ExtractionStats()
    started = time.perf_counter()

    results: dict[str, ExtractedVideo] = {}
    failures: dict[str, Failure] = {}
    jobs: list[_Job] = []
    for video_id, path in zip(ids, paths):
        if video_id in results or video_id in failures or any(j.video_id == video_id for j in jobs):
            continue  # the same file given twice
        try:
            media.check_file(path)
            key = file_key(path)
            entry = manifest["videos"].get(video_id)
            if cache and _cached(entry, key, identity, out_dir):
                assert entry is not None
                results[video_id] = _extracted(video_id, out_dir, entry, cached=True)
                stats.cached += 1
                continue
            info = media.probe(path)
            has_audio = media.require_audio(info, allow_missing_audio, notice)
        except (media.MediaError, OSError) as err:
            if fail_fast:
                raise
            failures[video_id] = Failure(video_id, path, one_line(err))
            notice(f"warning: {video_id} failed, the others go on: {one_line(err)}")
            continue
        jobs.append(_Job(video_id, path, info, has_audio, key))

    if jobs:
        (out_dir / VISUAL_DIR).mkdir(parents=True, exist_ok=True)
        (out_dir / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
        _run(
            jobs,
            out_dir,
            extractor,
            flow,
            identity,
            manifest,
            results,
            stats,
            progress,
            notice,
            failures=None if fail_fast else failures,
        )
    if any(manifest["videos"].pop(video_id, None) is not None for video_id in list(failures)):
        io.atomic_write_json(out_dir / MANIFEST_FILE, manifest)  # never lists a failed video
    stats.failed = len(failures)
    failures_file = _update_failures(out_dir, list(failures.values()), results)
    stats.wall_seconds = time.perf_counter() - started
    return ExtractionResult(
        [results[v] for v in dict.fromkeys(ids) if v in results],
        stats,
        out_dir / MANIFEST_FILE,
        list(failures.values()),
        failures_file,
    )


def _extracted(video_id: str, out_dir: Path, entry: dict, cached: bool) -> ExtractedVideo:
    return ExtractedVideo(
        video_id,
        Path(entry["source"]),
        out_dir / entry["visual"],
        out_dir / entry["audio"],
        entry,
        cached,
    )


def _run(
    jobs: Sequence[_Job],
    out_dir: Path,
    extractor: FeatureExtractor,
    flow: bool,
    identity: dict[str, Any],
    manifest: dict[str, Any],
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
        _decode_events(jobs, extractor, flow, stats, notice, fail_fast=failures is None),
        _QUEUE_DEPTH,
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
            manifest["videos"][job.video_id] = entry
            io.atomic_write_json(out_dir / MANIFEST_FILE, manifest)
            results[job.video_id] = _extracted(job.video_id, out_dir, entry, cached=False)
            stats.extracted += 1
            stats.audio_duration += num_samples / align.SAMPLE_RATE
    finally:
        events.close()  # stops the decoding thread now, also on an error
        bar.close()


def _write_video(
    out_dir: Path,
    job: _Job,
    reader: media.VideoReader,
    visual: np.ndarray,
    audio: np.ndarray,
    num_samples: int,
    identity: dict[str, Any],
) -> dict[str, Any]:
    """Writes one video's arrays (atomically) and returns its manifest entry."""
    visual_rel = f"{VISUAL_DIR}/{job.video_id}.npy"
    audio_rel = f"{AUDIO_DIR}/{job.video_id}.npy"
    _save_array(out_dir / visual_rel, visual)
    _save_array(out_dir / audio_rel, audio)
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
        "extractor": identity,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
