"""The decoding side of extraction: a background thread decodes (and computes the flow
of) the next chunk of frames into a bounded queue while the main thread runs the
networks, so that decoding overlaps compute.

`decode_events` yields, per video, ("chunk", job, frames, flow fields) items and then
("end", job, reader, log-mel examples, audio samples), or ("failed", job, reason);
`prefetch` runs it ahead in a thread. `ExtractionStats` says where the time went.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avloc_jax.extraction import align, media
from avloc_jax.extraction.networks import FeatureExtractor

QUEUE_DEPTH = 2  # decoded chunks waiting for the networks


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
class Job:
    video_id: str
    path: Path
    info: media.MediaInfo
    has_audio: bool
    key: str


def timed(iterator: Iterator[Any], stats: ExtractionStats, field: str) -> Iterator[Any]:
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


def decode_events(
    jobs: Sequence[Job],
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
    job: Job,
    extractor: FeatureExtractor,
    algorithm: Any,
    chunk_frames: int,
    stats: ExtractionStats,
    notice: media.Notice,
) -> Iterator[tuple]:
    """`decode_events` of one video."""
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
    frames = timed(reader.frames(chunk_frames), stats, "decode_seconds")
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
