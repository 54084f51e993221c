"""The `avloc` command line: a thin dispatcher over `avloc_jax.cli.<name>`.

Each subcommand lives in its own module and parses its own arguments, so that
`avloc train` can use absl/ml_collections config flags (`--config.a.b=v`) while the
small tools use argparse. Modules are imported lazily: `avloc --help` stays fast and a
heavy import (jax, tfds) is paid only by the subcommand that needs it.
"""

from __future__ import annotations

import importlib
import sys

# name -> (module under avloc_jax.cli, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "Train (and evaluate) a model from a config into a workdir."),
    "evaluate": ("evaluate", "Evaluate a trained workdir on a split."),
    "predict": ("predict", "Run a trained model on new feature files."),
    "build-data": (
        "build_data",
        "Build a TFDS dataset (ArrayRecord) from the public feature files.",
    ),
    "make-benchmark": (
        "make_benchmark",
        "Write a semi-synthetic benchmark built on real annotations.",
    ),
    "eval-detections": (
        "eval_detections",
        "Score ActivityNet-format detections (official mAP protocol).",
    ),
    "export-gt": (
        "export_gt",
        "Write ActivityNet-format ground truth from W-TALC annotation folders.",
    ),
    "plot": ("plot", "Plot CAS, reliability and attention maps, or training curves."),
    "export": ("export", "Write a self-contained inference bundle from a workdir."),
    "convert-weights": (
        "convert_weights",
        "Convert downloaded PyTorch VGGish/I3D checkpoints into orbax checkpoints.",
    ),
    "extract-features": (
        "extract_features",
        "Extract I3D + VGGish features from video files (PyAV, JAX).",
    ),
    "localize": (
        "localize",
        "Localize actions in video files: extract, predict, plot (needs a bundle).",
    ),
}


def _usage() -> str:
    width = max(len(n) for n in SUBCOMMANDS)
    lines = ["usage: avloc <command> [options]", "", "commands:"]
    for name, (_, help_text) in SUBCOMMANDS.items():
        lines.append(f"  {name:<{width}}  {help_text}")
    lines += ["", "Run `avloc <command> --help` for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        print(f"avloc: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name = f"avloc_jax.cli.{SUBCOMMANDS[name][0]}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        print(f"avloc {name}: not implemented yet in this version.", file=sys.stderr)
        return 3
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
