"""`avloc export --workdir W --out BUNDLE [--checkpoint best|last] [--force]`.

Writes a self-contained inference bundle: the parameters only (an orbax checkpoint, no
optimizer state; best-by-validation by default), the resolved config and the dataset
metadata (class names, feature sizes, seconds per snippet). `avloc predict --bundle
BUNDLE` and `avloc plot --bundle BUNDLE` need nothing else. The bundle is written to a
temporary directory and renamed into place, so an interrupted export leaves no partial
bundle behind.
"""

from __future__ import annotations

import argparse
import sys

PROGRAM = "avloc export"


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
    from avloc_jax.serving import inference

    try:
        loaded = inference.load_workdir(args.workdir, checkpoint=args.checkpoint)
        out = inference.write_bundle(loaded, args.out, force=args.force)
    except (FileNotFoundError, FileExistsError) as err:
        print(f"{PROGRAM}: error: {err}", file=sys.stderr)
        return 1
    print(
        f"{PROGRAM}: wrote {out} (step {loaded.step}, {loaded.metadata.num_classes} classes, "
        f"from {loaded.source})",
        file=sys.stderr,
    )
    print(out)
    return 0
