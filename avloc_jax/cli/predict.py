"""`avloc predict`: run a trained model on new feature files or on a dataset split.

    avloc predict --workdir W --visual v.npy --audio a.npy [--duration SEC] [--video-id ID]
    avloc predict --workdir W --split test [--data-dir D]
    ... [--bundle BUNDLE instead of --workdir] [--out pred.json] [--plot DIR]

Writes detections in the official ActivityNet prediction format
({"version", "results": {video: [{"label", "score", "segment": [s, e]}]}, "external_data"});
for AVE-style models (dataset task 'ave') also "snippet_labels": {video: [label per
snippet]}, the video's top class where μ_t >= eval.reliability_threshold and
'background' elsewhere.

Feature files are .npy arrays [T, D] with the model's feature sizes. Audio with a
different number of snippets is linearly resampled to the visual snippet count (a note
goes to stderr). Without --duration a video lasts T x seconds_per_snippet of the model's
dataset metadata (e.g. 1 s for the demo, 0.64 s for 16-frame I3D features at 25 fps).

Exit status: 0 on success, 2 for unusable inputs or options (message on stderr, naming
the file and what was expected), 1 when the workdir/bundle cannot be loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import sys
from pathlib import Path

from avloc_jax.cli import messages
from avloc_jax.data import activitynet_json

PROGRAM = "avloc predict"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--workdir", help="a workdir written by `avloc train` (uses its best-by-val checkpoint)"
    )
    source.add_argument("--bundle", help="an inference bundle written by `avloc export`")
    parser.add_argument("--visual", help="visual features of one video, .npy [T, Dv]")
    parser.add_argument("--audio", help="audio features of the same video, .npy [Ta, Da]")
    parser.add_argument(
        "--duration",
        type=float,
        help="the video's length in seconds (default: T x seconds per snippet)",
    )
    parser.add_argument(
        "--video-id", help="id of the video in the output (default: the visual file's name)"
    )
    parser.add_argument(
        "--split", help="predict a whole dataset split instead: val, test, train or a split name"
    )
    parser.add_argument(
        "--data-dir",
        help="with --split: where the dataset was built (default: the config's data.data_dir)",
    )
    parser.add_argument("--out", help="output JSON file (default: stdout)")
    parser.add_argument(
        "--plot",
        metavar="DIR",
        help="also write figures (CAS, reliability, segments, attention) to DIR",
    )
    parser.add_argument(
        "--plot-videos",
        type=int,
        default=4,
        help="with --split --plot: how many videos to plot (default 4)",
    )
    return parser


_note = functools.partial(messages.note, PROGRAM)
_fail = functools.partial(messages.fail, PROGRAM)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    file_mode = args.visual is not None or args.audio is not None
    if file_mode == (args.split is not None):
        return _fail("give either --visual and --audio (one video) or --split (a dataset split)", 2)
    if file_mode and (args.visual is None or args.audio is None):
        return _fail("--visual and --audio go together", 2)
    if args.split is not None and (args.duration is not None or args.video_id is not None):
        return _fail("--duration and --video-id apply to --visual/--audio only", 2)
    for option, path, folder in (("--out", args.out, False), ("--plot", args.plot, True)):
        problem = path and messages.output_problem(path, folder=folder)
        if problem:
            return _fail(f"{option}: {problem}", 2)

    # heavy imports (jax) after the argument checks
    from avloc_jax.serving import figures, inference

    try:
        loaded = inference.load(workdir=args.workdir, bundle=args.bundle)
    except FileNotFoundError as err:
        return _fail(str(err), 1)
    except messages.LOAD_ERRORS as err:
        return _fail(messages.load_error(args.workdir or args.bundle, err), 1)
    plot_dir = Path(args.plot) if args.plot else None
    written: list[Path] = []
    try:
        # Figures go to a temporary folder, moved into --plot once the JSON is written too.
        with contextlib.ExitStack() as stack:
            stage = stack.enter_context(messages.staged_folder(plot_dir)) if plot_dir else None
            if file_mode:
                payload, details = inference.predict_files(
                    loaded, args.visual, args.audio, duration=args.duration, video_id=args.video_id
                )
                if stage is not None:
                    written = figures.plot_prediction(loaded, details, stage, notice=_note)
            else:
                dataset, split = inference.open_split(loaded, args.data_dir, args.split)
                payload, _ = inference.predict_split(loaded, dataset, split)
                if stage is not None:
                    written = figures.plot_split(
                        loaded, dataset, split, args.plot_videos, stage, notice=_note
                    )
            text = activitynet_json.dumps_predictions(payload)
            if args.out is not None:
                messages.write_file(args.out, text + "\n")
    except inference.InputError as err:
        return _fail(str(err), 2)
    except FileNotFoundError as err:  # e.g. a dataset that is not built
        return _fail(str(err), 1)
    except OSError as err:  # an output that cannot be written
        return _fail(f"{err.filename or args.out}: {err.strerror or err}", 1)
    if args.out is None:
        print(text)
    written = [plot_dir / path.name for path in written] if plot_dir else []
    count, videos = activitynet_json.count_predictions(payload)
    where = args.out or "stdout"
    print(
        f"{PROGRAM}: {count} detections for {videos} video(s) -> {where} "
        f"(model: {loaded.source}, step {loaded.step})",
        file=sys.stderr,
    )
    for path in written:
        print(f"{PROGRAM}: wrote {path}", file=sys.stderr)
    return 0
