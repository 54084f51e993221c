"""`avloc make-benchmark {activitynet12,ave} --out DIR [--seed S] [--annotations PATH] [params]`.

Writes a semi-synthetic benchmark: real annotations (classes, durations, segments,
splits) with synthesised features that carry planted audio-visual structure, in the real
on-disk formats, so that `avloc build-data` reads it as it reads the real files. Every
synthesis parameter of `avloc_jax.benchmark.generator.default_config` is a flag (docs/benchmark.md).
"""

from __future__ import annotations

import argparse
import sys

from avloc_jax.benchmark import generator as benchmark


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="avloc make-benchmark",
        description="Write a semi-synthetic benchmark on real annotations, "
        "in the real on-disk formats.",
        epilog="Parameters and their effect: docs/benchmark.md. "
        "Then: avloc build-data FLAVOUR --manual-dir OUT ...",
    )
    p.add_argument("flavour", choices=benchmark.FLAVOURS)
    p.add_argument("--out", required=True, help="Output folder (written atomically).")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--annotations",
        help="Real annotations: the W-TALC ActivityNet1.2 folder, or the AVE data folder "
        "(default: ../shared/data/<flavour> relative to the repository).",
    )
    p.add_argument("--overwrite", action="store_true", help="Replace an existing output folder.")
    # Every synthesis parameter, typed from the defaults of both flavours.
    seen: dict[str, type] = {}
    for flavour in benchmark.FLAVOURS:
        for key, value in benchmark.default_config(flavour).items():
            seen.setdefault(key, type(value))
    for key, kind in sorted(seen.items()):
        p.add_argument(
            _flag(key),
            dest=key,
            type=kind,
            default=None,
            help=f"({kind.__name__}; default per flavour)",
        )
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    config = benchmark.default_config(args.flavour)
    for key in list(config.keys()):
        value = getattr(args, key, None)
        if value is not None:
            config[key] = value
    unused = [
        k
        for k, v in vars(args).items()
        if v is not None
        and k not in config
        and k not in ("flavour", "out", "seed", "annotations", "overwrite")
    ]
    if unused:
        print(
            f"avloc make-benchmark: {', '.join(_flag(k) for k in unused)} "
            f"do not apply to {args.flavour}",
            file=sys.stderr,
        )
        return 2
    try:
        manifest = benchmark.make_benchmark(
            args.flavour,
            args.out,
            annotations=args.annotations,
            config=config,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except (FileExistsError, FileNotFoundError, ValueError) as err:
        print(f"avloc make-benchmark: {err}", file=sys.stderr)
        return 1
    kinds: dict[str, int] = {}
    for info in manifest["classes"].values():
        kinds[info["kind"]] = kinds.get(info["kind"], 0) + 1
    print(f"wrote {args.flavour} benchmark to {args.out}: {manifest['counts']}, classes {kinds}")
    print("next: " + manifest["build"].format(out=args.out))
    return 0
