"""`avloc extract-features VIDEO... --out DIR --weights WEIGHTS_DIR [--flow] [--batch-size N]
[--allow-missing-audio] [--no-cache] [--vggish-pca]`.

Decodes each video (PyAV), resamples it to 25 fps, runs I3D RGB (and with --flow, TV-L1
optical flow and I3D flow) and VGGish, and writes DIR/visual/<id>.npy [T, 1024] (or
[T, 2048], RGB then flow), DIR/audio/<id>.npy [T, 128] on the same 0.64-s snippet grid,
and DIR/manifest.json. A video already extracted with the same weights and settings is
skipped. WEIGHTS_DIR is what `avloc convert-weights` wrote. Pipeline and alignment:
docs/extraction.md.

Exit status: 0 on success, 2 for an unusable video or option (the message names the
file and what was expected), 1 when the weights cannot be loaded.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys

from avloc_jax.cli import messages
from avloc_jax.cli.video_options import add_video_options, video_options_problem

PROGRAM = "avloc extract-features"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("videos", nargs="+", metavar="VIDEO", help="video files")
    parser.add_argument("--out", required=True, help="output folder (visual/, audio/, manifest)")
    parser.add_argument(
        "--weights", required=True, help="converted weights folder (avloc convert-weights)"
    )
    parser.add_argument(
        "--flow", action="store_true", help="also TV-L1 flow + I3D flow (slow; needs .[flow])"
    )
    parser.add_argument("--no-cache", action="store_true", help="re-extract every video")
    parser.add_argument(
        "--vggish-pca",
        action="store_true",
        help="apply AudioSet's PCA + 8-bit quantisation to the VGGish embeddings",
    )
    add_video_options(parser)
    return parser


_note = functools.partial(messages.note, PROGRAM)
_fail = functools.partial(messages.fail, PROGRAM)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    problem = video_options_problem(args)
    if problem:
        return _fail(problem, 2)

    from avloc_jax.extraction import flow, media, pipeline  # heavy imports after the checks

    try:
        extractor = pipeline.load_extractor(
            args.weights,
            flow=args.flow,
            batch_size=args.batch_size or pipeline.DEFAULT_BATCH_SIZE,
            vggish_postprocess=args.vggish_pca,
        )
    except (FileNotFoundError, ValueError) as err:
        return _fail(str(err), 1)
    try:
        result = pipeline.extract_features(
            args.videos,
            args.out,
            extractor,
            flow=args.flow,
            cache=not args.no_cache,
            progress=not args.quiet,
            allow_missing_audio=args.allow_missing_audio,
            notice=_note,
        )
    except (media.MediaError, ValueError) as err:
        return _fail(str(err), 2)
    except flow.FlowUnavailable as err:
        return _fail(str(err), 2)
    for video in result.videos:
        state = "cached" if video.cached else "extracted"
        print(f"{video.video_id}\t{state}\t{video.entry['snippets']} snippets\t{video.visual}")
    print(
        f"{PROGRAM}: {result.stats.extracted} extracted, {result.stats.cached} cached -> "
        f"{result.manifest}; times {json.dumps(_rounded(result.stats.as_json()))}",
        file=sys.stderr,
    )
    return 0


def _rounded(stats: dict) -> dict:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()}
