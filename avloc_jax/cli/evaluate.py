"""`avloc evaluate --workdir=W [--config=...] [--split=test] [--checkpoint=best|last]`."""

from __future__ import annotations

import json
import sys

from avloc_jax.cli import config_cli
from avloc_jax.common.config_checks import ConfigError


def main(argv: list[str]) -> int:
    values, rest = config_cli.parse(
        argv,
        "avloc evaluate",
        "Score a trained workdir's checkpoint on a split; writes W/results/<split>_metrics.json.",
        {
            "workdir": (None, "A workdir written by `avloc train`."),
            "split": ("test", "val, test, train, or a dataset split name."),
            "checkpoint": ("best", "best (by validation metric) or last."),
        },
    )
    if rest or values.workdir is None:
        print(
            "avloc evaluate: --workdir is required" + (f"; unexpected {rest}" if rest else ""),
            file=sys.stderr,
        )
        return 2
    if values.checkpoint not in ("best", "last"):
        print("avloc evaluate: --checkpoint must be best or last", file=sys.stderr)
        return 2
    try:
        config = (
            values.config
            if values.config is not None
            else config_cli.config_from_workdir(values.workdir)
        )
    except FileNotFoundError as err:
        print(f"avloc evaluate: {err}", file=sys.stderr)
        return 1
    except ConfigError as err:
        config_cli.fail("avloc evaluate", str(err))
    config_cli.check_config(config, "avloc evaluate")  # before anything is written
    from avloc_jax.engine import train

    try:
        metrics = train.evaluate_workdir(config, values.workdir, values.split, values.checkpoint)
    except FileNotFoundError as err:
        print(f"avloc evaluate: {err}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=1))
    return 0
