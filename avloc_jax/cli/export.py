"""`avloc export --workdir W --out BUNDLE [--checkpoint best|last] [--force]`.

Writes a self-contained inference bundle: the parameters only (an orbax checkpoint, no
optimizer state; best-by-validation by default), the resolved config and the dataset
metadata (class names, feature sizes, seconds per snippet). `avloc predict --bundle
BUNDLE` and `avloc plot --bundle BUNDLE` need nothing else. The bundle is written to a
temporary directory and renamed into place, so an interrupted export leaves no partial
bundle behind, and the folders made for it are removed again. Exit status: 0 on success,
2 for an --out that cannot be written, 1 for a workdir that cannot be loaded or an
existing bundle without --force; errors are one line ``avloc export: error: ...``.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

from avloc_jax.cli import messages

PROGRAM = "avloc export"
_fail = functools.partial(messages.fail, PROGRAM)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", required=True, help="a workdir written by `avloc train`")
    parser.add_argument("--out", required=True, help="the bundle directory to write")
    parser.add_argument(
        "--checkpoint",
        choices=("best", "last"),
        default="best",
        help="which checkpoint (default: best by validation)",
    )
    parser.add_argument("--force", action="store_true", help="replace an existing bundle at --out")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    problem = messages.output_problem(out, folder=True)
    if problem:
        return _fail(f"--out: {problem}", 2)
    if out.exists() and not args.force:
        return _fail(f"--out: {out} already exists; pass --force to replace it", 1)
    from avloc_jax.serving import inference

    try:
        loaded = inference.load_workdir(args.workdir, checkpoint=args.checkpoint)
    except FileNotFoundError as err:
        return _fail(str(err), 1)
    except messages.LOAD_ERRORS as err:
        return _fail(messages.load_error(args.workdir, err), 1)
    new = messages.missing_folders(out)
    try:
        out = inference.write_bundle(loaded, out, force=args.force)
    except BaseException as err:
        messages.remove_empty(new)  # the bundle's temporary folder is gone already
        if isinstance(err, OSError):
            return _fail(f"cannot write {out}: {err.strerror or err}", 1)
        raise
    classes = messages.plural(loaded.metadata.num_classes, "class")
    print(
        f"{PROGRAM}: wrote {out} (step {loaded.step}, {classes}, from {loaded.source})",
        file=sys.stderr,
    )
    print(out)
    return 0
