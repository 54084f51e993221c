"""Probing media files before decoding them: what a file holds (streams, size, duration,
rotation) and the errors every decoding step raises.

`probe` reads the headers and decodes the first frame, so that a bad file is refused
before any work. `header_duration` reads the duration from the headers alone (no
decoding), cheap enough to plan thousands of videos (the shards of `extract-features`).

Bad inputs raise `MediaError` (a ValueError) naming the file and what was expected.
`media` re-exports these names (`media.probe`, `media.MediaError`, ...).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

from avloc_jax.extraction import align

MAX_AUDIO_CHANNELS = 2
# Output frame k is the frame shown at k / fps; timestamps within this of k / fps count as
# shown at it (timestamps are rationals, their float seconds are not exact).
TIME_EPSILON = 1e-4

Notice = Callable[[str], None]


class MediaError(ValueError):
    """A media file that cannot be used; the message names the file and what was expected."""


class MediaWarning(UserWarning):
    """A media file used with a caveat (variable frame rate, rotation, no audio)."""


def warn(message: str) -> None:
    """The default notice: a `MediaWarning`."""
    warnings.warn(message, MediaWarning, stacklevel=3)


@dataclasses.dataclass(frozen=True)
class MediaInfo:
    """What `probe` finds in a file before decoding it."""

    path: str
    duration: float | None  # seconds per the headers (the video stream's, else the file's)
    stream_duration: float | None  # the video stream's own header duration, if it has one
    width: int  # coded frame size
    height: int
    rotation: int  # counter-clockwise degrees applied for display: 0, 90, 180 or 270
    average_fps: float | None
    video_codec: str
    start_time: float  # seconds: the first video frame's timestamp
    has_audio: bool
    audio_channels: int
    audio_sample_rate: int
    audio_codec: str | None


# ----------------------------------------------------------------------------- probing


def open_container(path: Path):
    import av

    try:
        return av.open(str(path))
    except av.FFmpegError as err:
        raise MediaError(
            f"{path}: cannot be opened as a media file ({err}); the file is corrupt, "
            "truncated or not a video; expected a video file (mp4, mkv, webm, avi, ...)"
        ) from None


def check_file(path: Path) -> None:
    """A `MediaError` unless `path` is an existing regular file."""
    if not path.exists():
        raise MediaError(f"{path}: no such file; expected a video file")
    if not path.is_file():
        raise MediaError(f"{path}: is not a regular file; expected a video file")


def display_rotation(matrix: np.ndarray | bytes) -> tuple[float, bool]:
    """(counter-clockwise degrees, mirrored) of a 3x3 display matrix as stored in files
    (9 int32; 16.16 fixed point for the 2x2 part), with FFmpeg's convention
    (av_display_rotation_get)."""
    m = np.frombuffer(matrix, np.int32) if isinstance(matrix, bytes) else np.asarray(matrix)
    m = m.reshape(-1).astype(np.float64)
    if m.size != 9:
        raise ValueError(f"a display matrix has 9 entries, got {m.size}")
    a, b, c, d = m[0] / 65536, m[1] / 65536, m[3] / 65536, m[4] / 65536
    scale_x, scale_y = math.hypot(a, c), math.hypot(b, d)
    if scale_x == 0 or scale_y == 0:
        raise ValueError("degenerate display matrix")
    degrees = -math.degrees(math.atan2(b / scale_y, a / scale_x))
    return degrees, (a * d - b * c) < 0


def quarter_turns(path: Path | str, matrix: np.ndarray | bytes | None) -> int:
    """The display rotation of `path` as counter-clockwise quarter turns 0..3; a
    `MediaError` for a mirrored matrix or an angle that is not a multiple of 90."""
    if matrix is None:
        return 0
    try:
        degrees, mirrored = display_rotation(matrix)
    except ValueError as err:
        raise MediaError(f"{path}: unreadable rotation metadata ({err})") from None
    if mirrored:
        raise MediaError(
            f"{path}: its display matrix mirrors the frames (rotation {degrees:.0f} degrees "
            "plus a flip); expected no rotation metadata or a rotation by a multiple of 90 "
            "degrees: re-encode it upright first (e.g. ffmpeg -i IN -c:a copy OUT)"
        )
    turns = degrees / 90.0
    if abs(turns - round(turns)) > 1e-3:
        raise MediaError(
            f"{path}: rotation metadata of {degrees:.1f} degrees; expected a multiple of 90 "
            "degrees: re-encode it upright first (e.g. ffmpeg -i IN -c:a copy OUT)"
        )
    return int(round(turns)) % 4


def _frame_matrix(frame) -> bytes | None:
    side = frame.side_data.get("DISPLAYMATRIX")
    return None if side is None else bytes(side)


def _stream_duration(stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _headers_duration(container) -> float | None:
    """Seconds per the headers: the video stream's duration, else the file's."""
    if container.streams.video:
        duration = _stream_duration(container.streams.video[0])
        if duration is not None:
            return duration
    return container.duration / 1e6 if container.duration is not None else None  # microseconds


def probe(path: Path | str) -> MediaInfo:
    """Streams, size, duration and rotation of a video file; decodes its first frame.

    Raises `MediaError` for: a missing, corrupt or truncated file; no video stream;
    more than two audio channels; rotation metadata that is mirrored or not a multiple
    of 90 degrees; a video shorter than one snippet (16 frames at 25 fps = 0.64 s) by its
    header. A missing audio track is reported in `has_audio` (see `require_audio`)."""
    import av

    path = Path(path)
    check_file(path)
    container = open_container(path)
    try:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise MediaError(
                f"{path}: has no video stream (streams: {', '.join(kinds)}); expected a "
                "video file with a video stream, not an audio-only file"
            )
        video = container.streams.video[0]
        audio = container.streams.audio[0] if container.streams.audio else None
        channels = int(audio.codec_context.channels) if audio is not None else 0
        if audio is not None and channels > MAX_AUDIO_CHANNELS:
            raise MediaError(
                f"{path}: its audio has {channels} channels ({audio.layout.name}); expected "
                "mono or stereo (VGGish hears one channel: downmix it first, e.g. "
                "ffmpeg -i IN -ac 2 -c:v copy OUT)"
            )
        try:
            first = next(container.decode(video), None)
        except av.FFmpegError as err:
            raise MediaError(
                f"{path}: its first video frame cannot be decoded ({err}); the file is "
                "corrupt or truncated; expected a playable video"
            ) from None
        if first is None:
            raise MediaError(f"{path}: its video stream has no frames; expected a playable video")
        duration = _headers_duration(container)
        minimum = align.SNIPPET_FRAMES / align.FPS
        if duration is not None and duration < minimum - TIME_EPSILON:
            raise MediaError(
                f"{path}: lasts {duration:.3f} s; expected at least one snippet "
                f"({align.SNIPPET_FRAMES} frames at {align.FPS} fps = {minimum:.2f} s)"
            )
        rate = video.average_rate
        return MediaInfo(
            path=str(path),
            duration=duration,
            stream_duration=_stream_duration(video),
            width=int(video.codec_context.width),
            height=int(video.codec_context.height),
            rotation=90 * quarter_turns(path, _frame_matrix(first)),
            average_fps=float(rate) if rate else None,
            video_codec=video.codec_context.name,
            start_time=float(first.time or 0.0),
            has_audio=audio is not None,
            audio_channels=channels,
            audio_sample_rate=int(audio.rate) if audio is not None else 0,
            audio_codec=audio.codec_context.name if audio is not None else None,
        )
    finally:
        container.close()


def require_audio(info: MediaInfo, allow_missing: bool, notice: Notice = warn) -> bool:
    """Whether `info`'s file has audio; without it, a `MediaError` unless `allow_missing`
    (then a notice that silence is used and that the model was trained with audio)."""
    if info.has_audio:
        return True
    if not allow_missing:
        raise MediaError(
            f"{info.path}: has no audio track; expected a video with sound (the model "
            "fuses audio and visual features). Pass --allow-missing-audio to use silence "
            "instead"
        )
    notice(
        f"warning: {info.path} has no audio track: its audio features are those of "
        "silence. The model was trained with audio, so expect worse localization"
    )
    return False


def header_duration(path: Path | str) -> float | None:
    """Seconds per the container headers (the video stream's, else the file's), without
    decoding anything; None when the file cannot be opened or states no duration."""
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError):
        return None
    try:
        return _headers_duration(container)
    finally:
        container.close()
