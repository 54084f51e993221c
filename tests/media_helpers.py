"""Shared by the extraction and localize tests: media files synthesised with PyAV, and
small stand-in networks with the call signatures of I3D and VGGish.

The clip: a red 16x16 square moving left to right on black, and an audio track that is
silent until `tone_at` seconds, then a 1 kHz sine at amplitude 0.5.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from avloc_jax.extraction import align, pipeline

TONE_AT = 1.92  # seconds: the start of snippet 3 (3 x 0.64) and of VGGish example 2
SIZE = 32  # stand-in frame size (short side and crop), instead of I3D's 256 / 224


BITS = 7  # index_frames: the frame index in 7 horizontal bands of 6 rows


def frame_image(index: int, count: int, width: int, height: int, coded: bool = False):
    """uint8 [H, W, 3]: black with a red 16x16 square moving right; or (`coded`) the
    frame index in binary, band b (rows 6b..6b+5) white where bit b is set."""
    image = np.zeros((height, width, 3), np.uint8)
    if coded:
        for bit in range(BITS):
            if index >> bit & 1:
                image[6 * bit : 6 * bit + 6] = 255
        return image
    x = int(round(index * (width - 16) / max(count - 1, 1)))
    image[8:24, x : x + 16] = (255, 0, 0)
    return image


def frame_indices(frames: np.ndarray) -> np.ndarray:
    """The indices written by `frame_image(coded=True)`, read back from frames
    [N, >=42, W, 3] (decoded without resizing)."""
    bands = np.stack(
        [frames[:, 6 * b + 1 : 6 * b + 5].mean(axis=(1, 2, 3)) > 128 for b in range(BITS)], 1
    )
    return (bands * (1 << np.arange(BITS))).sum(axis=1)


def tone(seconds: float, rate: int, tone_at: float = TONE_AT) -> np.ndarray:
    """float32 [S]: silence, then a 1 kHz sine (amplitude 0.5) from `tone_at`."""
    t = np.arange(int(round(seconds * rate))) / rate
    return np.where(t >= tone_at, 0.5 * np.sin(2 * np.pi * 1000 * t), 0.0).astype(np.float32)


def write_clip(
    path: Path,
    seconds: float = 3.0,
    fps: int = 25,
    size: tuple[int, int] = (64, 48),
    *,
    rate: int = 16000,
    channels: int = 1,
    video: bool = True,
    audio: bool = True,
    rotation: int | None = None,
    hflip: bool = False,
    timestamps_ms: list[int] | None = None,
    index_frames: bool = False,
    right_channel_silent: bool = False,
    faststart: bool = False,
    tone_at: float = TONE_AT,
    container_format: str = "mp4",
    audio_seconds: float | None = None,
) -> Path:
    """An mp4 (H.264 + AAC; or another `container_format`) of the clip described in the
    module doc; `audio_seconds` makes the audio track longer or shorter than the video.

    timestamps_ms: explicit frame times (a variable frame rate) instead of `fps`.
    index_frames: frame i shows i in binary (`frame_indices` reads it back, to tell
      which source frame each output frame is) instead of the moving square.
    """
    options = {"movflags": "faststart"} if faststart else {}
    container = av.open(str(path), "w", format=container_format, options=options)
    if video:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation, hflip=hflip)
        if timestamps_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
    if audio:
        layouts = {1: "mono", 2: "stereo", 6: "5.1"}
        sound = container.add_stream("aac", rate=rate, layout=layouts[channels])
    if video:
        times = timestamps_ms if timestamps_ms is not None else range(int(round(seconds * fps)))
        times = list(times)
        for i, pts in enumerate(times):
            image = frame_image(i, len(times), *size, coded=index_frames)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = pts
            if timestamps_ms is not None:
                frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    if audio:
        mono = tone(seconds if audio_seconds is None else audio_seconds, rate, tone_at)
        block = sound.codec_context.frame_size or 1024
        for start in range(0, len(mono), block):
            piece = np.tile(mono[start : start + block][None], (channels, 1))
            if right_channel_silent and channels == 2:
                piece[1] = 0.0
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(piece), format="fltp", layout=sound.layout.name
            )
            frame.sample_rate, frame.pts = rate, start
            container.mux(sound.encode(frame))
        container.mux(sound.encode())
    container.close()
    return path


# ----------------------------------------------------------------------------- stand-ins


class ColourNet(nn.Module):
    """Stand-in I3D: snippets [B, T, S, S, C] in [-1, 1] -> [B, C + 1 + extra]: the mean
    of each channel, the horizontal centre of mass of the red square (in [0, 1]; 0 for
    flow input), then `extra` learned projections (to reach a model's feature size)."""

    extra: int = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        means = x.mean(axis=(1, 2, 3))
        red = jnp.clip(x[..., 0] - x[..., 1], 0.0, None).mean(axis=(1, 2))  # [B, W]
        columns = jnp.linspace(0.0, 1.0, x.shape[3])
        centre = (red * columns).sum(-1) / jnp.maximum(red.sum(-1), 1e-6)
        features = [means, centre[:, None]]
        if self.extra:
            features.append(nn.Dense(self.extra)(means))
        return jnp.concatenate(features, axis=-1)


class EnergyNet(nn.Module):
    """Stand-in VGGish: log-mel examples [N, 96, 64] -> [N, dim], each column the mean
    log-mel energy of the example (it rises with the example's RMS energy)."""

    dim: int = 2

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        energy = x.reshape(x.shape[0], -1).mean(axis=-1, keepdims=True)
        return jnp.tile(energy, (1, self.dim))


def toy_log_mel(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Stand-in front end with VGGish's framing: 25-ms windows every 10 ms, 96 frames per
    example; each frame's value (broadcast over 64 bins) is log(mean power + 0.01)."""
    assert sample_rate == align.SAMPLE_RATE
    x = np.asarray(samples, np.float64)
    frames = 1 + (len(x) - 400) // 160 if len(x) >= 400 else 0
    count = frames // 96
    starts = np.arange(count * 96) * 160
    power = np.array([np.mean(x[s : s + 400] ** 2) for s in starts]) if count else np.zeros(0)
    log_power = np.log(power + 0.01).reshape(count, 96, 1)
    return np.broadcast_to(log_power, (count, 96, 64)).astype(np.float32)


def standin_extractor(
    rgb_extra: int = 0,
    audio_dim: int = 2,
    flow: bool = False,
    weights_id: str = "standin-v1",
    batch_size: int = 2,
) -> pipeline.FeatureExtractor:
    """An extractor of stand-in networks on 32x32 frames (visual: 4 + rgb_extra, plus 3
    with flow; audio: audio_dim), with the pipeline's own batching and sharding."""
    rgb_module = ColourNet(rgb_extra)
    rgb_vars = rgb_module.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, SIZE, SIZE, 3)))
    audio_module = EnergyNet(audio_dim)
    flow_fn = None
    if flow:
        flow_module = ColourNet()
        flow_vars = flow_module.init(jax.random.PRNGKey(1), jnp.zeros((1, 16, SIZE, SIZE, 2)))
        flow_fn = pipeline.ShardedApply(flow_module.apply, flow_vars, batch_size)
    return pipeline.FeatureExtractor(
        rgb=pipeline.image_network(rgb_module.apply, rgb_vars, batch_size),
        audio=pipeline.ShardedApply(audio_module.apply, {}, 4),
        log_mel=toy_log_mel,
        rgb_dim=4 + rgb_extra,
        audio_dim=audio_dim,
        weights_id=weights_id,
        flow=flow_fn,
        flow_dim=3 if flow else 0,
        short_side=SIZE,
        crop_size=SIZE,
        batch_size=batch_size,
    )


def run_extract_features(capsys, *argv) -> tuple[int, str, str]:
    """`avloc extract-features ARGV` in this process: (exit code, stdout, stderr)."""
    from avloc_jax.cli import main as cli

    code = cli.main(["extract-features", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def video_states(stdout: str) -> dict[str, str]:
    """{video id: extracted | cached | failed} from extract-features' stdout lines."""
    return dict(line.split("\t")[:2] for line in stdout.splitlines())
