"""`avloc localize VIDEO... --bundle EXPORTED_MODEL --extractor WEIGHTS_DIR [--out DIR]
[--allow-missing-audio] [--batch-size N] [--top K]`, or
`avloc localize FEATURES_DIR... --bundle EXPORTED_MODEL [--out DIR] [--top K]`.

Extraction, prediction and post-processing in one command: the features of each video
(cached under DIR/features: an unchanged video is not decoded again), the bundle's
predictions in the official ActivityNet JSON (DIR/predictions.json, segments in seconds
of the video's duration), a PNG timeline per video (DIR/<video>.png: class activation,
foreground reliability, detected segments) and a table of the top detections on stdout.

EXPORTED_MODEL is a bundle from `avloc export`; WEIGHTS_DIR the converted I3D and VGGish
weights from `avloc convert-weights`. The flow stream runs when the model was trained on
2048-d (RGB + flow) visual features. A FEATURES_DIR written by `avloc extract-features`
is used as it is: nothing is decoded, and no --extractor is needed.

The model must take I3D + VGGish features (1024 or 2048, and 128): the demo bundle (48
and 24) cannot, and the error says how to train one that can.

Exit status: 0 on success, 2 for an unusable video or a model whose feature sizes do not
match (the message names the file and what was expected), 1 when the bundle or the
weights cannot be loaded.
"""

from __future__ import annotations

import argparse
import functools
import sys

from avloc_jax.cli import messages
from avloc_jax.cli.video_options import add_video_options, video_options_problem
from avloc_jax.data import activitynet_json

PROGRAM = "avloc localize"
DEFAULT_OUT = "localize-out"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "videos",
        nargs="+",
        metavar="VIDEO",
        help="video files, or folders written by avloc extract-features",
    )
    parser.add_argument("--bundle", required=True, help="an inference bundle (avloc export)")
    parser.add_argument(
        "--extractor",
        help="converted weights folder (avloc convert-weights); needed for video files",
    )
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--top", type=int, default=3, help="detections per video in the table")
    add_video_options(parser)
    return parser


_note = functools.partial(messages.note, PROGRAM)
_fail = functools.partial(messages.fail, PROGRAM)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    problem = video_options_problem(args)
    if problem:
        return _fail(problem, 2)
    if args.top < 1:
        return _fail("--top must be at least 1", 2)

    # heavy imports (jax, av) after the argument checks
    from avloc_jax.extraction import flow, media
    from avloc_jax.serving import inference, localize

    try:
        result = localize.localize(
            args.videos,
            args.bundle,
            args.extractor,
            args.out,
            allow_missing_audio=args.allow_missing_audio,
            batch_size=args.batch_size,
            progress=not args.quiet,
            notice=_note,
            top=args.top,
        )
    except FileNotFoundError as err:
        return _fail(str(err), 1)
    except (media.MediaError, inference.InputError, flow.FlowUnavailable, ValueError) as err:
        return _fail(str(err), 2)
    print(result.table)
    count, videos = activitynet_json.count_predictions(result.payload)
    print(
        f"{PROGRAM}: {count} detections for {videos} video(s) -> {result.predictions}",
        file=sys.stderr,
    )
    for path in result.figures:
        print(f"{PROGRAM}: wrote {path}", file=sys.stderr)
    return 0
