"""Speed of feature extraction (`avloc extract-features`) on this machine.

  python bench/extract_speed.py [--weights WEIGHTS_DIR] [--seconds 10.3] [--flow-seconds 5.2]
                                [--width 320] [--height 240] [--fps 30] [--batch-size 8]
                                [--no-flow] [--out bench/results_cpu_extract_speed.json]

Synthesises a test video with PyAV (moving coloured rectangles at --fps, --width x
--height, H.264; a stereo 44.1 kHz AAC track with a tone), then runs the real pipeline
(`extraction.pipeline.extract_features`: decoding thread, 25-fps resampling, resize +
crop, batched jitted networks, alignment, files) once to compile and once timed:

* RGB + audio on the whole clip: 25-fps frames per second end to end, and the time in
  decoding (+ resize/crop), the audio front end (decoding + log-mel), the I3D and VGGish
  forward passes, and how long the networks waited for decoded frames;
* audio: seconds of audio per second (front end and VGGish);
* flow (when OpenCV's contrib modules are installed): RGB + TV-L1 + I3D flow on a
  shorter clip.

The default lengths give whole batches (10.3 s at 30 fps -> 257 frames at 25 fps -> 16
snippets = 2 batches of 8; 5.2 s -> 8 snippets): each video's last batch is padded to
the batch size (one compiled shape), which a clip of 1 snippet would pay 8 times.

Networks: the converted weights with --weights; otherwise the real architectures
(`extraction.i3d.InceptionI3D`, `extraction.vggish.VGGish`) with random weights, which
cost the same to run; if those modules are not installed, small stand-ins (then the
network figures mean nothing, and the JSON says so). Prints one JSON object (machine,
command, figures) and writes it to --out.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avloc_jax.common import io  # noqa: E402
from avloc_jax.extraction import align, pipeline  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results_cpu_extract_speed.json"


def synthesise(path: Path, seconds: float, fps: int, width: int, height: int) -> Path:
    """An mp4 of `seconds`: three coloured rectangles bouncing around, and a stereo tone."""
    import av

    container = av.open(str(path), "w")
    video = container.add_stream("libx264", rate=fps)
    video.width, video.height, video.pix_fmt = width, height, "yuv420p"
    audio = container.add_stream("aac", rate=44100, layout="stereo")
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 1, (3, 4))  # x, y, vx, vy
    colours = np.array([(230, 40, 40), (40, 200, 60), (40, 80, 230)], np.uint8)
    for i in range(int(round(seconds * fps))):
        image = np.full((height, width, 3), 30, np.uint8)
        for (x, y, vx, vy), colour in zip(boxes, colours):
            px = int(abs(((x + 0.3 * vx * i / fps) % 2) - 1) * (width - 40))
            py = int(abs(((y + 0.3 * vy * i / fps) % 2) - 1) * (height - 40))
            image[py : py + 40, px : px + 40] = colour
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = i
        container.mux(video.encode(frame))
    container.mux(video.encode())
    t = np.arange(int(seconds * 44100)) / 44100
    wave = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > seconds / 3)).astype(np.float32)
    block = audio.codec_context.frame_size or 1024
    for start in range(0, len(wave), block):
        piece = np.ascontiguousarray(np.tile(wave[start : start + block][None], (2, 1)))
        frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = 44100, start
        frame.time_base = Fraction(1, 44100)
        container.mux(audio.encode(frame))
    container.mux(audio.encode())
    container.close()
    return path


def random_extractor(batch_size: int, flow: bool) -> tuple[pipeline.FeatureExtractor, str]:
    """The real architectures with random weights, or stand-ins if they are missing."""
    import importlib

    import jax
    import jax.numpy as jnp

    try:
        i3d = importlib.import_module("avloc_jax.extraction.i3d")
        vggish = importlib.import_module("avloc_jax.extraction.vggish")
    except ImportError:
        return _standin_extractor(batch_size, flow), (
            "stand-ins (avloc_jax.extraction.i3d / vggish are not installed): the network "
            "figures do not measure I3D or VGGish"
        )
    snippet = jnp.zeros((1, align.SNIPPET_FRAMES, 224, 224, 3))
    rgb_module = i3d.InceptionI3D(3, 400)
    rgb_vars = jax.jit(rgb_module.init)(jax.random.PRNGKey(0), snippet)
    audio_module = vggish.VGGish()
    audio_vars = jax.jit(audio_module.init)(jax.random.PRNGKey(1), jnp.zeros((1, 96, 64)))
    flow_fn = None
    if flow:
        flow_module = i3d.InceptionI3D(2, 400)
        flow_vars = jax.jit(flow_module.init)(jax.random.PRNGKey(2), snippet[..., :2])
        flow_fn = pipeline.ShardedApply(flow_module.apply, flow_vars, batch_size)
    extractor = pipeline.FeatureExtractor(
        rgb=pipeline.image_network(rgb_module.apply, rgb_vars, batch_size),
        audio=pipeline.ShardedApply(
            audio_module.apply, audio_vars, pipeline.DEFAULT_AUDIO_BATCH_SIZE
        ),
        log_mel=vggish.log_mel_examples,
        rgb_dim=pipeline.I3D_FEATURES,
        audio_dim=pipeline.VGGISH_FEATURES,
        weights_id="random-init",
        flow=flow_fn,
        flow_dim=pipeline.I3D_FEATURES if flow else 0,
        batch_size=batch_size,
    )
    return extractor, "InceptionI3D (RGB, flow) and VGGish, random weights (same cost)"


def _standin_extractor(batch_size: int, flow: bool) -> pipeline.FeatureExtractor:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    class Pool(nn.Module):
        @nn.compact
        def __call__(self, x):
            return nn.Dense(8)(x.reshape(x.shape[0], -1, x.shape[-1]).mean(axis=1))

    def log_mel(samples: np.ndarray, rate: int) -> np.ndarray:
        count = (len(samples) - 400) // 15360
        frames = samples[: count * 15360].reshape(count, 96, 160)[..., :64]
        return np.log(frames**2 + 0.01).astype(np.float32)

    module = Pool()
    rgb_vars = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 224, 224, 3)))
    flow_vars = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 224, 224, 2)))
    audio_vars = module.init(jax.random.PRNGKey(0), jnp.zeros((1, 96, 64)))
    return pipeline.FeatureExtractor(
        rgb=pipeline.image_network(module.apply, rgb_vars, batch_size),
        audio=pipeline.ShardedApply(module.apply, audio_vars, 64),
        log_mel=log_mel,
        rgb_dim=8,
        audio_dim=8,
        weights_id="standin",
        flow=pipeline.ShardedApply(module.apply, flow_vars, batch_size) if flow else None,
        flow_dim=8 if flow else 0,
        batch_size=batch_size,
    )


def have_flow() -> bool:
    try:
        import cv2
    except ImportError:
        return False
    return hasattr(cv2, "optflow")


def run(
    video: Path, out: Path, extractor: pipeline.FeatureExtractor, flow: bool
) -> pipeline.ExtractionStats:
    result = pipeline.extract_features(
        [video], out, extractor, flow=flow, cache=False, progress=False, notice=lambda m: None
    )
    return result.stats


def figures(stats: pipeline.ExtractionStats, flow: bool, batch_size: int) -> dict[str, Any]:
    """Rates and the shares of the busy time (decoding runs beside the networks, so
    the shares add up to more than the wall time)."""
    visual_network = stats.network_seconds - stats.audio_network_seconds
    rgb_network = visual_network - stats.flow_network_seconds
    busy = {
        "decode_resize_crop": stats.decode_seconds,
        "tvl1_flow": stats.flow_seconds,
        "audio_decode_logmel": stats.audio_seconds,
        "i3d_rgb": rgb_network,
        "i3d_flow": stats.flow_network_seconds,
        "vggish": stats.audio_network_seconds,
    }
    if not flow:
        busy.pop("tvl1_flow"), busy.pop("i3d_flow")
    total = sum(busy.values())
    decoding = stats.decode_seconds + stats.flow_seconds + stats.audio_seconds
    snippets = stats.frames // align.SNIPPET_FRAMES
    return {
        "frames_25fps": stats.frames,
        "snippets": snippets,
        "snippets_computed_with_padding": -(-snippets // batch_size) * batch_size,
        "audio_seconds": round(stats.audio_duration, 3),
        "wall_seconds": round(stats.wall_seconds, 3),
        "frames_per_second_end_to_end": round(stats.frames / stats.wall_seconds, 2),
        "frames_per_second_decode": round(stats.frames / max(stats.decode_seconds, 1e-9), 1),
        "frames_per_second_i3d_rgb": round(stats.frames / max(rgb_network, 1e-9), 2),
        "audio_seconds_per_second": round(
            stats.audio_duration / max(stats.audio_seconds + stats.audio_network_seconds, 1e-9), 1
        ),
        "busy_seconds": {k: round(v, 3) for k, v in busy.items()},
        "busy_share": {k: round(v / total, 3) for k, v in busy.items()},
        "decoding_share": round(decoding / total, 3),
        "network_share": round(stats.network_seconds / total, 3),
        "networks_waited_for_frames_seconds": round(stats.wait_seconds, 3),
    }


def machine() -> dict[str, Any]:
    import av
    import jax

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "pyav": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="converted weights (default: random weights)")
    parser.add_argument("--seconds", type=float, default=10.3)
    parser.add_argument("--flow-seconds", type=float, default=5.2)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=pipeline.DEFAULT_BATCH_SIZE)
    parser.add_argument("--no-flow", action="store_true")
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--note", help="a remark stored in the JSON (e.g. where the code was)")
    args = parser.parse_args(argv)
    flow = not args.no_flow and have_flow()
    info = machine()  # before the timings, for the load average
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        size = (args.width, args.height)
        clip = synthesise(root / "clip.mp4", args.seconds, args.fps, *size)
        warmup = synthesise(root / "warmup.mp4", 1.28, args.fps, *size)
        if args.weights:
            extractor = pipeline.load_extractor(args.weights, flow=flow, batch_size=args.batch_size)
            networks = f"converted weights from {args.weights}"
        else:
            extractor, networks = random_extractor(args.batch_size, flow)
        run(warmup, root / "warm", extractor, False)  # compiles the RGB and audio networks
        rgb = figures(run(clip, root / "rgb", extractor, False), False, args.batch_size)
        flow_figures: dict[str, Any] | str = "skipped: OpenCV contrib (cv2.optflow) missing"
        if args.no_flow:
            flow_figures = "skipped: --no-flow"
        if flow:
            short = synthesise(root / "short.mp4", args.flow_seconds, args.fps, *size)
            run(warmup, root / "warm_flow", extractor, True)  # compiles the flow network
            flow_figures = figures(
                run(short, root / "flow", extractor, True), True, args.batch_size
            )
    report = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT))] + sys.argv[1:]),
        "machine": info,
        "networks": networks,
        **({"note": args.note} if args.note else {}),
        "input": {
            "seconds": args.seconds,
            "flow_seconds": args.flow_seconds,
            "source": f"{args.width}x{args.height} at {args.fps} fps, H.264; AAC stereo 44.1 kHz",
            "frames": "25 fps, shorter side 256, centre crop 224",
            "batch_size_snippets": args.batch_size,
        },
        "rgb_audio": rgb,
        "rgb_flow_audio": flow_figures,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        io.atomic_write_text(args.out, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
