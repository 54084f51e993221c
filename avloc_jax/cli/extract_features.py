"""`avloc extract-features [VIDEO|FOLDER]... [--list FILE] --out DIR --weights WEIGHTS_DIR
[--flow] [--batch-size N] [--allow-missing-audio] [--no-cache] [--vggish-pca] [--fail-fast]
[--shard I/N | --distributed]`, and `avloc extract-features --merge DIR`.

Inputs: video files; folders (their video files, by extension, sorted by name); and with
--list FILE, one video a line, `PATH` or `ID<TAB>PATH` (a relative PATH is relative to
the list's folder; blank lines and lines starting with # are skipped). A video's id is
the one given in the list, else its file name without the extension; two different
files with one id are refused before any work, naming both.

Decodes each video (PyAV), resamples it to 25 fps, runs I3D RGB (and with --flow, TV-L1
optical flow and I3D flow) and VGGish, and writes DIR/visual/<id>.npy [T, 1024] (or
[T, 2048], RGB then flow), DIR/audio/<id>.npy [T, 128] on the same 0.64-s snippet grid,
and DIR/manifest.json. A video already extracted with the same weights and settings is
skipped, so a killed run resumes where it stopped when run again. WEIGHTS_DIR is what
`avloc convert-weights` wrote. Pipeline and alignment: docs/extraction.md.

A video that cannot be decoded, has no audio track (without --allow-missing-audio) or
is shorter than one snippet (16 frames) does not stop the job: it is recorded in
DIR/failures.json (id, path, one-line reason), left out of the manifest, and the others
go on; a later run that extracts it removes its entry. --fail-fast stops at the first
bad video instead (exit 2; a bad file found while probing, before anything is written).

Many hosts: --shard I/N extracts shard I of N (videos dealt out by their durations, read
from the headers) and records it in DIR/manifest.part-0000I-of-0000N.json; after every
shard has run, --merge DIR writes manifest.json and failures.json from the parts. Under
jax.distributed (--distributed, or JAX_COORDINATOR_ADDRESS set, as for `avloc train`)
each process is the shard of its process index, and process 0 merges when all are done.

Exit status: 0 on success, 3 when some video failed (the others are extracted), 2 for
an unusable option or input list, parts that cannot be merged, or any bad video with
--fail-fast (the message names the file and what was expected), 1 when the weights
cannot be loaded. Under jax.distributed every process exits with the job's status.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import Any

from avloc_jax.cli import messages
from avloc_jax.cli.video_options import add_video_options, video_options_problem

PROGRAM = "avloc extract-features"
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mkv", ".webm", ".mov", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".ts"}
)


class InputError(ValueError):
    """An input list or folder that cannot be used."""


def read_list(path: Path) -> list[tuple[str | None, Path]]:
    """(id or None, path) per entry of a list file: `PATH` or `ID<TAB>PATH` a line; blank
    lines and # comments skipped; a relative PATH is relative to the list's folder."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"--list {path}: no such file; expected a list of videos") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--list {path}: cannot read it ({err})") from None
    entries: list[tuple[str | None, Path]] = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        video_id, tab, video = line.partition("\t")
        if not tab:
            video_id, video = "", line
        video_id, video = video_id.strip(), video.strip()
        if tab and (not video_id or not video):
            raise InputError(f"--list {path}, line {number}: expected PATH or ID<TAB>PATH")
        entries.append((video_id or None, path.parent / Path(video).expanduser()))
    if not entries:
        raise InputError(f"--list {path}: lists no video; expected one PATH or ID<TAB>PATH a line")
    return entries


def folder_videos(folder: Path) -> list[Path]:
    """The video files of `folder` (not its subfolders), by extension, sorted by name."""
    videos = sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS
    )
    if not videos:
        raise InputError(
            f"{folder}: holds no video file; expected files ending in "
            f"{', '.join(sorted(VIDEO_EXTENSIONS))}"
        )
    return videos


def gather_inputs(videos: list[str], list_file: str | None) -> list[tuple[str | None, Path]]:
    """(id or None, path) of every input, in order: the arguments (a folder gives its
    videos), then the list file's entries."""
    entries: list[tuple[str | None, Path]] = []
    for video in videos:
        path = Path(video)
        if path.is_dir():
            entries.extend((None, p) for p in folder_videos(path))
        else:
            entries.append((None, path))
    if list_file is not None:
        entries.extend(read_list(Path(list_file)))
    if not entries:
        raise InputError("no video given: pass video files, folders or --list FILE")
    return entries


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "videos", nargs="*", metavar="VIDEO", help="video files, or folders of video files"
    )
    parser.add_argument(
        "--list",
        metavar="FILE",
        help="a file of videos, one a line: PATH or ID<TAB>PATH (# comments, blank lines)",
    )
    parser.add_argument(
        "--fail-fast",
        action="store_true",
        help="stop at the first bad video (exit 2) instead of recording it in failures.json",
    )
    parser.add_argument("--out", help="output folder (visual/, audio/, manifest); required")
    parser.add_argument(
        "--weights", help="converted weights folder (avloc convert-weights); required"
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
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="extract shard I of N (0 <= I < N) into DIR/manifest.part-I-of-N.json; "
        "--merge DIR once all have run",
    )
    parser.add_argument(
        "--distributed",
        action="store_true",
        help="start jax.distributed (also when JAX_COORDINATOR_ADDRESS is set): one shard "
        "per process, merged by process 0",
    )
    parser.add_argument(
        "--merge",
        metavar="DIR",
        help="merge the manifest parts of a sharded run in DIR into manifest.json and "
        "failures.json (nothing else is done)",
    )
    add_video_options(parser)
    return parser


_note = functools.partial(messages.note, PROGRAM)
_fail = functools.partial(messages.fail, PROGRAM)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    problem = video_options_problem(args) or _mode_problem(args)
    if problem:
        return _fail(problem, 2)
    if args.merge is not None:
        return _merge(Path(args.merge))

    from avloc_jax.common import parallel  # heavy imports after the checks
    from avloc_jax.extraction import shards

    shard = shards.parse_shard(args.shard) if args.shard else None
    try:
        parallel.maybe_initialize_distributed(args.distributed)
    except (RuntimeError, ValueError) as err:
        return _fail(
            f"jax.distributed did not start ({' '.join(str(err).split()).rstrip('.')}); "
            "expected to run under a launcher that JAX detects (srun, mpirun); elsewhere "
            "run --shard I/N in each process, then --merge the folder",
            2,
        )
    import jax

    group = jax.process_count()
    if group > 1:
        if shard is not None:
            return _fail(
                f"--shard {args.shard} under jax.distributed: each process extracts the shard "
                f"of its process index ({jax.process_index()}/{group} here); leave --shard out",
                2,
            )
        shard = shards.Shard(jax.process_index(), group)
    code, extractor, inputs = _prepare(args)
    code = shards.agree(code)  # every process stops when one cannot start
    if code or extractor is None:
        return code
    code = shards.agree(_extract(args, extractor, inputs, shard))
    if group == 1 or code not in (0, 3):
        return code
    if jax.process_index() == 0:
        code = shards.job_status([code, _merge(Path(args.out), group)])
    return shards.agree(code)  # every process waits for the merge


def _mode_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the combination of inputs, --merge and the required options."""
    if args.merge is not None:
        extra = [f for f, v in _RUN_OPTIONS.items() if v(args)]
        if extra:
            return f"--merge DIR does nothing else; drop {', '.join(extra)}"
        return None
    missing = [f"--{name}" for name in ("out", "weights") if getattr(args, name) is None]
    if missing:
        return f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} required"
    if args.shard is not None:
        from avloc_jax.extraction import shards

        try:
            shards.parse_shard(args.shard)
        except ValueError as err:
            return str(err)
    return None


_RUN_OPTIONS = {
    "VIDEO": lambda a: bool(a.videos),
    "--list": lambda a: a.list is not None,
    "--out": lambda a: a.out is not None,
    "--weights": lambda a: a.weights is not None,
    "--shard": lambda a: a.shard is not None,
    "--distributed": lambda a: a.distributed,
    "--flow": lambda a: a.flow,
    "--no-cache": lambda a: a.no_cache,
    "--fail-fast": lambda a: a.fail_fast,
}


def _prepare(args: argparse.Namespace) -> tuple[int, Any, list[tuple[str | None, Path]]]:
    """(0, the extractor, the inputs), or (exit status, None, []) after an error line."""
    from avloc_jax.extraction import pipeline

    try:
        inputs = gather_inputs(args.videos, args.list)
        pipeline.video_ids([p for _, p in inputs], [i for i, _ in inputs])
    except ValueError as err:
        return _fail(str(err), 2), None, []
    try:
        extractor = pipeline.load_extractor(
            args.weights,
            flow=args.flow,
            batch_size=args.batch_size or pipeline.DEFAULT_BATCH_SIZE,
            vggish_postprocess=args.vggish_pca,
        )
    except (FileNotFoundError, ValueError) as err:
        return _fail(str(err), 1), None, []
    return 0, extractor, inputs


def _extract(args: argparse.Namespace, extractor: Any, inputs: list, shard: Any) -> int:
    """Extracts (this shard of) the inputs; prints a line per video and the summary."""
    from avloc_jax.extraction import flow, media, pipeline

    try:
        result = pipeline.extract_features(
            [p for _, p in inputs],
            args.out,
            extractor,
            flow=args.flow,
            cache=not args.no_cache,
            progress=not args.quiet,
            allow_missing_audio=args.allow_missing_audio,
            notice=_note,
            ids=[i for i, _ in inputs],
            fail_fast=args.fail_fast,
            shard=shard,
        )
    except (media.MediaError, ValueError) as err:
        return _fail(str(err), 2)
    except flow.FlowUnavailable as err:
        return _fail(str(err), 2)
    for video in result.videos:
        state = "cached" if video.cached else "extracted"
        print(f"{video.video_id}\t{state}\t{video.entry['snippets']} snippets\t{video.visual}")
    for failure in result.failures:
        print(f"{failure.video_id}\tfailed\t{failure.reason}")
    stats = result.stats
    failed = f" (listed in {result.failures_file})" if stats.failed else ""
    where = f"shard {result.shard}: " if result.shard is not None else ""
    others = f", {result.other_shards} in other shards" if result.shard is not None else ""
    print(
        f"{PROGRAM}: {where}{stats.extracted} extracted, {stats.cached} cached, {stats.failed} "
        f"failed{failed}{others} -> {result.manifest}; times "
        f"{json.dumps(_rounded(stats.as_json()))}",
        file=sys.stderr,
    )
    return 3 if stats.failed else 0


def _merge(folder: Path, count: int | None = None) -> int:
    """Merges the parts in `folder` (of a run in `count` shards): exit 0, 3 when the run
    had failures, 2 when the parts cannot be merged (one error line, nothing written)."""
    from avloc_jax.extraction import shards

    try:
        merged = shards.merge(folder, count)
    except shards.PartsError as err:
        return _fail(str(err), 2)
    failed = f" (listed in {merged.failures_file})" if merged.failures else ""
    print(
        f"{PROGRAM}: merged {messages.plural(merged.shards, 'part')}: "
        f"{messages.plural(merged.videos, 'video')}, {len(merged.failures)} failed{failed} "
        f"-> {merged.manifest}",
        file=sys.stderr,
    )
    return 3 if merged.failures else 0


def _rounded(stats: dict) -> dict:
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in stats.items()}
