"""`avloc make-benchmark {activitynet12,ave} --out DIR [--seed S] [--annotations PATH] [params]`.

Writes a semi-synthetic benchmark: real annotations (classes, durations, segments,
splits) with synthesised features that carry planted audio-visual structure, in the real
on-disk formats, so that `avloc build-data` reads it as it reads the real files. Every
synthesis parameter of `avloc_jax.benchmark.generator.default_config` is a flag (docs/benchmark.md).
"""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

from avloc_jax.benchmark import generator as benchmark
from avloc_jax.cli import messages


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


PROGRAM = "avloc make-benchmark"
_fail = functools.partial(messages.fail, PROGRAM)


def _range_problem(config: dict) -> str | None:
    """A synthesis parameter outside its range, named by its flag; None if all are fine."""
    for key, value in sorted(config.items()):
        if key.endswith(("_fraction", "_probability", "_prob")) or key == "temporal_correlation":
            if not 0.0 <= value <= 1.0:
                return f"{_flag(key)} must be in [0, 1], got {value}"
        elif key.endswith(("_dim", "_snippet_seconds")):
            if not value > 0:
                return f"{_flag(key)} must be positive, got {value}"
        elif not value >= 0:
            return f"{_flag(key)} must be >= 0, got {value}"
    # Only flavours with both kinds of special class have the constraint (no fallback value).
    shared = {"pair_fraction", "silent_fraction"} <= set(config.keys())
    if shared and config["pair_fraction"] + config["silent_fraction"] > 1:
        return (
            f"--pair-fraction + --silent-fraction must be at most 1 (they share the classes), "
            f"got {config['pair_fraction']} + {config['silent_fraction']}"
        )
    return None


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
        flags = ", ".join(_flag(k) for k in unused)
        return _fail(
            f"{flags} {'does' if len(unused) == 1 else 'do'} not apply to {args.flavour}", 2
        )
    problem = _range_problem(config)
    if problem is None:
        problem = messages.output_problem(args.out, folder=True)
        problem = problem and f"--out: {problem}"
    if problem:
        return _fail(problem, 2)
    new = messages.missing_folders(Path(args.out))
    try:
        manifest = benchmark.make_benchmark(
            args.flavour,
            args.out,
            annotations=args.annotations,
            config=config,
            seed=args.seed,
            overwrite=args.overwrite,
        )
    except BaseException as err:
        messages.remove_empty(new)  # the generator removed its temporary folder already
        if isinstance(err, FileExistsError | FileNotFoundError | ValueError):
            return _fail(str(err), 1)
        if isinstance(err, OSError):
            return _fail(f"cannot write {args.out}: {err.strerror or err}", 1)
        raise
    kinds: dict[str, int] = {}
    for info in manifest["classes"].values():
        kinds[info["kind"]] = kinds.get(info["kind"], 0) + 1
    print(f"wrote {args.flavour} benchmark to {args.out}: {manifest['counts']}, classes {kinds}")
    print("next: " + manifest["build"].format(out=args.out))
    return 0
