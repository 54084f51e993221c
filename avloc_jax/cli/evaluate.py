"""`avloc evaluate --workdir=W [--config=...] [--split=test] [--checkpoint=best|last]`."""

from __future__ import annotations

import json
from pathlib import Path

from avloc_jax.cli import config_cli, messages
from avloc_jax.common.config_checks import ConfigError

PROGRAM = "avloc evaluate"


def main(argv: list[str]) -> int:
    values, rest = config_cli.parse(
        argv,
        PROGRAM,
        "Score a trained workdir's checkpoint on a split; writes W/results/<split>_metrics.json.\n"
        "Every input (workdir, config, dataset, split) is checked before anything is written.",
        {
            "workdir": (None, "A workdir written by `avloc train`."),
            "split": ("test", "val, test, train, or a dataset split name."),
            "checkpoint": ("best", "best (by validation metric) or last."),
        },
        {"verbose": "print the full log (absl INFO lines of jax, orbax, TFDS)"},
    )
    if rest:
        return messages.fail(PROGRAM, f"unexpected arguments {rest}", 2)
    if values.workdir is None:
        return messages.fail(PROGRAM, "--workdir is required", 2)
    if values.checkpoint not in ("best", "last"):
        return messages.fail(PROGRAM, f"--checkpoint={values.checkpoint}: expected best or last", 2)
    if not Path(values.workdir).is_dir():
        return messages.fail(
            PROGRAM, f"{values.workdir}: no such directory; expected a workdir of `avloc train`", 2
        )
    # The schema imports the library, whose first log record would otherwise set up
    # logging: everything from here on runs inside the command's logging.
    with config_cli.command_logging(values.verbose):
        try:
            config = (
                values.config
                if values.config is not None
                else config_cli.config_from_workdir(values.workdir)
            )
        except (FileNotFoundError, ConfigError) as err:
            return messages.fail(PROGRAM, str(err), 2)
        config_cli.check_config(config, PROGRAM)  # before anything is written
        from avloc_jax.engine import train

        try:
            metrics = train.evaluate_workdir(
                config, values.workdir, values.split, values.checkpoint
            )
        except (FileNotFoundError, ConfigError) as err:  # nothing was written
            return messages.fail(PROGRAM, str(err), 2)
    print(json.dumps(metrics, indent=1))
    return 0
