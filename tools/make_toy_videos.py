"""Writes a handful of short labelled videos and their ground truth, to try the path from
video files to actions without a dataset at hand (README "Run on your own videos"; CI
runs it there).

    python tools/make_toy_videos.py --out /tmp/avloc_videos [--videos 6] [--seconds 1.28] [--seed 0]

OUT/<id>.mp4 (H.264 + AAC, 25 fps, 64x48, 16 kHz mono): black and silent, except for one
action per video: class `beep` (a white square and an 880 Hz tone) or `knock` (a green
square and a 220 Hz tone), at a seeded time. OUT/gt.json is its ground truth in the
ActivityNet layout that `avloc build-data generic --gt` reads, with the videos dealt
round-robin to the subsets `training`, `training`, `validation`, `testing`.

The folder is written under a temporary name and renamed into place: it is there
complete or not at all. An existing OUT is an error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import av
import numpy as np

from avloc_jax.data import activitynet_json

FPS = 25
SIZE = (64, 48)  # width, height
RATE = 16000
CLASSES = {"beep": ((255, 255, 255), 880.0), "knock": ((0, 200, 0), 220.0)}
SUBSETS = ("training", "training", "validation", "testing")


def write_video(path: Path, seconds: float, label: str, start: float, end: float) -> None:
    """One toy video: black and silent, with `label`'s square and tone in [start, end)."""
    colour, pitch = CLASSES[label]
    container = av.open(str(path), "w", format="mp4")
    video = container.add_stream("libx264", rate=FPS)
    video.width, video.height = SIZE
    video.pix_fmt = "yuv420p"
    sound = container.add_stream("aac", rate=RATE, layout="mono")
    for index in range(int(round(seconds * FPS))):
        image = np.zeros((SIZE[1], SIZE[0], 3), np.uint8)
        if start <= index / FPS < end:
            image[12:36, 20:44] = colour
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = index
        container.mux(video.encode(frame))
    container.mux(video.encode())
    t = np.arange(int(round(seconds * RATE))) / RATE
    wave = np.where((t >= start) & (t < end), 0.5 * np.sin(2 * np.pi * pitch * t), 0.0)
    wave = wave.astype(np.float32)
    block = sound.codec_context.frame_size or 1024
    for offset in range(0, len(wave), block):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(wave[None, offset : offset + block]), format="fltp", layout="mono"
        )
        frame.sample_rate, frame.pts = RATE, offset
        container.mux(sound.encode(frame))
    container.mux(sound.encode())
    container.close()


def make(out: Path, videos: int, seconds: float, seed: int) -> dict:
    """Writes the videos and gt.json into `out` (which must not exist); returns the GT."""
    rng = np.random.default_rng(seed)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    videos_gt = []
    try:
        for index in range(videos):
            video_id = f"toy_{index:02d}"
            label = sorted(CLASSES)[index % len(CLASSES)]
            length = float(rng.uniform(0.4, 0.7)) * seconds
            start = round(float(rng.uniform(0.0, seconds - length)), 2)
            end = round(start + length, 2)
            write_video(tmp / f"{video_id}.mp4", seconds, label, start, end)
            videos_gt.append(
                activitynet_json.GroundTruthVideo(
                    video_id=video_id,
                    subset=SUBSETS[index % len(SUBSETS)],
                    duration=seconds,
                    segments=np.asarray([[start, end]]),
                    labels=(label,),
                )
            )
        gt = activitynet_json.ground_truth_payload(videos_gt, version="toy")
        activitynet_json.write_ground_truth(tmp / "gt.json", gt)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return gt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", required=True, type=Path, help="the folder to write")
    parser.add_argument("--videos", type=int, default=6, help="how many videos (default 6)")
    parser.add_argument(
        "--seconds", type=float, default=1.28, help="each video's length (default: 2 snippets)"
    )
    parser.add_argument("--seed", type=int, default=0, help="action times")
    args = parser.parse_args(argv)
    if args.out.exists():
        print(f"make_toy_videos: error: {args.out} exists; give a new folder", file=sys.stderr)
        return 2
    if args.videos < len(SUBSETS) or args.seconds < 1.0:
        print(
            f"make_toy_videos: error: --videos must be at least {len(SUBSETS)} and --seconds "
            "at least 1 (one VGGish example and one I3D snippet)",
            file=sys.stderr,
        )
        return 2
    gt = make(args.out, args.videos, args.seconds, args.seed)
    print(f"make_toy_videos: {len(gt['database'])} videos and gt.json -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
