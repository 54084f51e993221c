"""`avloc train --config=configs/X.py --workdir=W [--config.key=value ...]`."""

from __future__ import annotations

import json
import sys

from avloc_jax.cli import config_cli


def main(argv: list[str]) -> int:
    values, rest = config_cli.parse(
        argv,
        "avloc train",
        "Train a model into a workdir (resumes from its checkpoints), then score val and test.",
        {"workdir": (None, "Directory for the config, logs, checkpoints and results.")},
    )
    if rest:
        print(f"avloc train: unexpected arguments {rest}", file=sys.stderr)
        return 2
    if values.config is None or values.workdir is None:
        print("avloc train: --config and --workdir are required", file=sys.stderr)
        return 2
    config_cli.check_config(values.config, "avloc train")  # before anything is written
    from avloc_jax.data.annotations import DataError
    from avloc_jax.engine import train  # heavy imports after argument checks

    try:
        outcome = train.train_and_evaluate(values.config, values.workdir)
    except (FileNotFoundError, DataError) as err:  # missing dataset or bad data: no traceback
        print(f"avloc train: {err}", file=sys.stderr)
        return 1
    if outcome.get("preempted"):
        print(
            f"preempted at step {outcome['step']}: checkpoint saved in {values.workdir}; "
            "rerun to resume"
        )
        return 0
    print(
        json.dumps(
            {"best_step": outcome["best_step"], "val": outcome["val"], "test": outcome["test"]},
            indent=1,
        )
    )
    return 0
