"""Speed of feature extraction (`avloc extract-features`) on this machine.

  python bench/extract_speed.py [--weights WEIGHTS_DIR] [--seconds 10.3] [--flow-seconds 5.2]
                                [--width 320] [--height 240] [--fps 30] [--batch-size 8]
                                [--no-flow] [--out bench/results_cpu_extract_speed.json]
                                [--peer torch [--peer-rounds 5] [--peer-flow]
                                 [--peer-checkpoints DIR] [--peer-only]]

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

``--peer torch`` adds ``torch_peer``: the same networks in PyTorch (`bench/torch_peer.py`,
the I3D and VGGish architectures written from the papers in the state-dict layouts that
`avloc convert-weights` reads), in this process, on the same decoded batch: --batch-size
snippets of the clip's 25-fps 224 centre crops (uint8, scaled to [-1, 1] by each side)
and one audio batch (16 log-mel examples of the clip's audio, repeated to fill it). Both
sides get the same weights: the files in --peer-checkpoints (rgb_imagenet.pt,
flow_imagenet.pt, vggish-10086976.pth; each side loads them, JAX through
`convert.convert_state_dict`), else one seeded random state dict per network given to
torch and converted for JAX by the same converter. After one untimed call each, the
sides alternate --peer-rounds times (JAX, then torch, per round) and each round gives a
ratio, so load from other processes hits both alike:

  torch_peer: {"rgb_fps": torch 25-fps frames/s, "audio_rt": torch audio s per s,
               "jax_rgb_fps", "jax_audio_rt", "rgb_speed_ratio": JAX/torch throughput
               (median of the rounds), "audio_speed_ratio", "rgb_audio_speed_ratio"
               (the network time of one second of video: 25 frames and 1 s of audio),
               "*_ratio_range": [min, max], "max_abs_diff": over all features,
               "per_network": every round's times, ...}

The JSON goes to stdout (and --out); the one-line verdict (ratios, difference) to stderr.

``max_abs_diff`` above 1e-4 is an error (exit 1, nothing written). --peer-flow adds I3D
flow on seeded uniform [-1, 1] fields of the same shape (the network's cost does not
depend on the values); --peer-only skips the pipeline runs. PyTorch is a bench-only
dependency: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from machine import describe, load_average  # noqa: E402  (bench/machine.py)

from avloc_jax.common import io  # noqa: E402
from avloc_jax.extraction import align, pipeline  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results_cpu_extract_speed.json"
PEER_TOLERANCE = 1e-4  # max |JAX - torch| over the features: the same weights, the same numbers
PEERS = ("torch",)
INSTALL_PEER = "pip install -e '.[bench]'"


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


def machine(load_at_start: list[float] | None) -> dict[str, Any]:
    """bench/machine.py's description with JAX (measured after the timings; the load when
    they started and ended), and the PyAV and FFmpeg versions that decoded."""
    import av

    return {
        **describe(load_at_start, with_jax=True),
        "pyav": av.__version__,
        "ffmpeg": av.ffmpeg_version_info,
    }


# ----------------------------------------------------------------------------- torch peer


class PeerError(RuntimeError):
    """A --peer run that cannot go on (one line, printed as `error: ...`; exit 2)."""


class PeerMismatch(PeerError):
    """The two sides' features differ by more than PEER_TOLERANCE (exit 1)."""


def import_torch_peer() -> Any:
    """`bench/torch_peer.py`, or PeerError saying how to install PyTorch."""
    try:
        import torch  # noqa: F401
    except ImportError as err:
        raise PeerError(
            f"--peer torch needs PyTorch, a bench-only extra: {INSTALL_PEER} ({err})"
        ) from err
    import importlib

    bench = str(Path(__file__).resolve().parent)
    if bench not in sys.path:
        sys.path.insert(0, bench)
    return importlib.import_module("torch_peer")


def peer_checkpoint_files(directory: str | None, flow: bool) -> dict[str, Path]:
    """network name -> the public checkpoint in `directory` that both sides load (none
    when no directory is given: seeded random weights). Missing files are one error."""
    if directory is None:
        return {}
    from avloc_jax.extraction import convert

    names = ["i3d_rgb", "vggish"] + (["i3d_flow"] if flow else [])
    files = {name: Path(directory) / convert.spec_for(name).reference_file for name in names}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise PeerError(
            f"--peer-checkpoints {directory}: missing {', '.join(missing)}; expected the "
            "public checkpoints " + ", ".join(p.name for p in files.values())
        )
    return files


def peer_networks(peer: Any, files: dict[str, Path], flow: bool, seed: int) -> dict[str, Any]:
    """name -> (torch module, JAX variables) holding the same weights: the checkpoint
    file read once, or a seeded random state dict given to torch; JAX's variables come
    from that state dict through the project's converter (`convert.convert_state_dict`)."""
    from avloc_jax.extraction import convert

    names = ["i3d_rgb", "vggish"] + (["i3d_flow"] if flow else [])
    networks = {}
    for offset, name in enumerate(names):
        state = convert.read_state_dict(files[name]) if name in files else None
        source = str(files[name]) if name in files else f"random (seed {seed + offset})"
        if name == "vggish":
            model, state = peer.vggish_peer(state, seed=seed + offset)
        else:
            model, state = peer.i3d_peer(name.split("_")[1], state, seed=seed + offset)
        variables = convert.convert_state_dict(name, state, source=source)
        networks[name] = (model, variables, source)
    return networks


def peer_inputs(clip: Path, batch_size: int, audio_rows: int, flow: bool) -> dict[str, Any]:
    """The decoded batch both sides run: uint8 snippets [batch_size, 16, 224, 224, 3] of
    the clip's 25-fps centre crops (the clip repeated if it is shorter), log-mel
    examples [audio_rows, 96, 64] of its audio (repeated to fill the batch), and with
    `flow` seeded uniform [-1, 1] fields [batch_size, 16, 224, 224, 2]."""
    from avloc_jax.extraction import media, vggish

    frames = media.decode_video(clip)
    need = batch_size * align.SNIPPET_FRAMES
    frames = np.resize(frames, (need, *frames.shape[1:])) if len(frames) < need else frames
    snippets = frames[:need].reshape(batch_size, align.SNIPPET_FRAMES, *frames.shape[1:])
    examples = vggish.log_mel_examples(
        media.decode_audio(clip, align.SAMPLE_RATE), align.SAMPLE_RATE
    )
    if len(examples) == 0:
        raise PeerError(f"{clip}: shorter than one 0.96-s VGGish example")
    examples = np.resize(examples, (audio_rows, *examples.shape[1:])).astype(np.float32)
    inputs = {"i3d_rgb": snippets, "vggish": examples}
    if flow:
        rng = np.random.default_rng(0)
        shape = (*snippets.shape[:-1], 2)
        inputs["i3d_flow"] = rng.uniform(-1.0, 1.0, shape).astype(np.float32)
    return inputs


def summarise_rounds(
    jax_seconds: list[float], torch_seconds: list[float], units: float
) -> dict[str, Any]:
    """Rates (units per second, medians over the rounds) and the JAX / torch throughput
    ratio of each round (torch time / JAX time): its median and range."""
    ratios = [t / j for j, t in zip(jax_seconds, torch_seconds)]
    return {
        "jax_rate": round(units / statistics.median(jax_seconds), 3),
        "torch_rate": round(units / statistics.median(torch_seconds), 3),
        "ratio": round(statistics.median(ratios), 3),
        "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)],
        "jax_seconds": [round(x, 3) for x in jax_seconds],
        "torch_seconds": [round(x, 3) for x in torch_seconds],
    }


def peer_line(peer: dict[str, Any]) -> str:
    """The one-line verdict: the ratios with their ranges over the rounds, the difference."""

    def ratio(key: str) -> str:
        low, high = peer[f"{key}_range"]
        return f"{peer[key]:.2f}x (rounds {low:.2f}-{high:.2f})"

    return (
        f"JAX / torch throughput: RGB + audio {ratio('rgb_audio_speed_ratio')}; "
        f"I3D RGB {ratio('rgb_speed_ratio')}, VGGish {ratio('audio_speed_ratio')}; "
        f"max |JAX - torch| over the features {peer['max_abs_diff']:.2g}"
    )


def run_peer(
    clip: Path,
    batch_size: int,
    rounds: int,
    flow: bool,
    checkpoints: str | None,
    seed: int = 0,
) -> dict[str, Any]:
    """The `torch_peer` figures (see the module doc). Raises PeerError when the features
    differ by more than PEER_TOLERANCE."""
    import torch

    from avloc_jax.extraction import i3d, vggish

    peer = import_torch_peer()
    files = peer_checkpoint_files(checkpoints, flow)
    networks = peer_networks(peer, files, flow, seed)
    audio_rows = pipeline.DEFAULT_AUDIO_BATCH_SIZE
    inputs = peer_inputs(clip, batch_size, audio_rows, flow)
    flow_network = (
        pipeline.ShardedApply(i3d.InceptionI3D(2).apply, networks["i3d_flow"][1], batch_size)
        if flow
        else None
    )
    jax_fns = {
        "i3d_rgb": pipeline.image_network(
            i3d.InceptionI3D(3).apply, networks["i3d_rgb"][1], batch_size
        ),
        "vggish": pipeline.ShardedApply(vggish.VGGish().apply, networks["vggish"][1], audio_rows),
        **({"i3d_flow": flow_network} if flow_network is not None else {}),
    }

    def torch_fn(name: str) -> Any:
        model, x = networks[name][0], inputs[name]
        if name == "vggish":
            return lambda: model(torch.from_numpy(x)).numpy()
        return lambda: model(peer.frames_to_torch(x)).numpy()

    times: dict[str, tuple[list[float], list[float]]] = {}
    diffs: dict[str, float] = {}
    with torch.inference_mode():
        for name, fn in jax_fns.items():  # untimed: compiles, builds oneDNN primitives
            ours, theirs = np.asarray(fn(inputs[name])), torch_fn(name)()
            diffs[name] = float(np.abs(ours - theirs).max())
            times[name] = ([], [])
        for _ in range(rounds):
            for name, fn in jax_fns.items():
                started = time.perf_counter()
                np.asarray(fn(inputs[name]))
                times[name][0].append(time.perf_counter() - started)
                run = torch_fn(name)
                started = time.perf_counter()
                run()
                times[name][1].append(time.perf_counter() - started)
    frames = batch_size * align.SNIPPET_FRAMES
    audio_seconds = audio_rows * 0.96
    per = {
        name: summarise_rounds(*times[name], frames if name != "vggish" else audio_seconds)
        for name in jax_fns
    }
    rgb, audio = per["i3d_rgb"], per["vggish"]

    def per_video_second(rgb_seconds: list[float], audio_batch_seconds: list[float]) -> list:
        """Each round's network time for one second of video: 25 RGB frames, 1 s of audio."""
        return [
            r * align.FPS / frames + a / audio_seconds
            for r, a in zip(rgb_seconds, audio_batch_seconds)
        ]

    (jax_rgb, torch_rgb), (jax_audio, torch_audio) = times["i3d_rgb"], times["vggish"]
    both = summarise_rounds(
        per_video_second(jax_rgb, jax_audio), per_video_second(torch_rgb, torch_audio), 1.0
    )
    result: dict[str, Any] = {
        "rgb_fps": rgb["torch_rate"],
        "audio_rt": audio["torch_rate"],
        "jax_rgb_fps": rgb["jax_rate"],
        "jax_audio_rt": audio["jax_rate"],
        "rgb_speed_ratio": rgb["ratio"],
        "rgb_speed_ratio_range": rgb["ratio_range"],
        "audio_speed_ratio": audio["ratio"],
        "audio_speed_ratio_range": audio["ratio_range"],
        "rgb_audio_speed_ratio": both["ratio"],
        "rgb_audio_speed_ratio_range": both["ratio_range"],
        "max_abs_diff": max(diffs.values()),
        "max_abs_diff_per_network": diffs,
        "tolerance": PEER_TOLERANCE,
        "rounds": rounds,
        "batch": {
            "i3d_snippets": batch_size,
            "vggish_examples": audio_rows,
            "rgb_frames": frames,
            "audio_seconds": round(audio_seconds, 2),
        },
        "weights": {name: source for name, (_, _, source) in networks.items()},
        "per_network": per,
        "torch": {"version": torch.__version__, "threads": torch.get_num_threads()},
        "units": "rgb_fps: 25-fps frames per second; audio_rt: seconds of audio per second; "
        "ratios: JAX throughput / torch throughput, the median of the rounds; "
        "rgb_audio_speed_ratio: of the network time per second of video (25 RGB frames "
        "and 1 s of audio)",
    }
    if flow:
        result["flow_fps"] = per["i3d_flow"]["torch_rate"]
        result["jax_flow_fps"] = per["i3d_flow"]["jax_rate"]
        result["flow_speed_ratio"] = per["i3d_flow"]["ratio"]
    check_agreement(diffs)
    return result


def check_agreement(diffs: dict[str, float], tolerance: float = PEER_TOLERANCE) -> None:
    """PeerMismatch naming the network whose features differ most, if beyond `tolerance`
    (a NaN difference is a mismatch too)."""
    beyond = [k for k, v in diffs.items() if not v <= tolerance]  # NaN included
    if beyond:
        worst = max(beyond, key=lambda k: (np.isnan(diffs[k]), diffs[k]))
        raise PeerMismatch(
            f"the JAX and torch {worst} features differ by {diffs[worst]:.3g} > "
            f"{tolerance:g} on the same weights (per network: "
            + ", ".join(f"{k} {v:.3g}" for k, v in diffs.items())
            + ")"
        )


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
    parser.add_argument("--peer", choices=PEERS, help="also time the PyTorch networks")
    parser.add_argument("--peer-rounds", type=int, default=5)
    parser.add_argument("--peer-flow", action="store_true", help="also I3D flow, both sides")
    parser.add_argument(
        "--peer-checkpoints",
        help="folder of the public PyTorch checkpoints both sides load (default: equal "
        "seeded random weights)",
    )
    parser.add_argument("--peer-only", action="store_true", help="skip the pipeline runs")
    args = parser.parse_args(argv)
    if not args.peer and (args.peer_only or args.peer_flow or args.peer_checkpoints):
        parser.error("--peer-only, --peer-flow and --peer-checkpoints need --peer torch")
    if args.peer_rounds < 1:
        parser.error("--peer-rounds must be at least 1")
    try:
        if args.peer:  # checked before any work
            import_torch_peer()
            peer_checkpoint_files(args.peer_checkpoints, args.peer_flow)
        report = measure(args)
    except PeerError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1 if isinstance(err, PeerMismatch) else 2
    text = json.dumps(report, indent=1)
    print(text)
    if "torch_peer" in report:  # stdout stays one JSON object
        print(peer_line(report["torch_peer"]), file=sys.stderr)
    if args.out:
        io.atomic_write_text(args.out, text + "\n")
    return 0


def measure(args: argparse.Namespace) -> dict[str, Any]:
    flow = not args.no_flow and have_flow() and not args.peer_only
    load_start = load_average()  # before the timings
    rgb: dict[str, Any] | str = "skipped: --peer-only"
    flow_figures: dict[str, Any] | str = "skipped: --peer-only"
    networks = "skipped: --peer-only"
    peer: dict[str, Any] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        size = (args.width, args.height)
        clip = synthesise(root / "clip.mp4", args.seconds, args.fps, *size)
        if args.peer:
            peer = run_peer(
                clip, args.batch_size, args.peer_rounds, args.peer_flow, args.peer_checkpoints
            )
        if not args.peer_only:
            warmup = synthesise(root / "warmup.mp4", 1.28, args.fps, *size)
            if args.weights:
                extractor = pipeline.load_extractor(
                    args.weights, flow=flow, batch_size=args.batch_size
                )
                networks = f"converted weights from {args.weights}"
            else:
                extractor, networks = random_extractor(args.batch_size, flow)
            run(warmup, root / "warm", extractor, False)  # compiles the RGB and audio networks
            rgb = figures(run(clip, root / "rgb", extractor, False), False, args.batch_size)
            flow_figures = "skipped: OpenCV contrib (cv2.optflow) missing"
            if args.no_flow:
                flow_figures = "skipped: --no-flow"
            if flow:
                short = synthesise(root / "short.mp4", args.flow_seconds, args.fps, *size)
                run(warmup, root / "warm_flow", extractor, True)  # compiles the flow network
                flow_figures = figures(
                    run(short, root / "flow", extractor, True), True, args.batch_size
                )
    return {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT))] + sys.argv[1:]),
        "machine": machine(load_start),  # after the timings: the load when they ended
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
        **({"torch_peer": peer} if peer is not None else {}),
    }


if __name__ == "__main__":
    sys.exit(main())
