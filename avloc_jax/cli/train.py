"""`avloc train --config=configs/X.py --workdir=W [--config.key=value ...]`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from avloc_jax.cli import config_cli, messages
from avloc_jax.common import workdir as layout
from avloc_jax.common.config_checks import ConfigError
from avloc_jax.common.workdir import LOG_FILE  # in the workdir: the run's full log

PROGRAM = "avloc train"

DOC = f"""\
Train a model into a workdir, then score val and test with the best-by-validation
checkpoint (the scores as JSON on stdout).

A workdir holds one run. The same command again resumes it from its last checkpoint
(SIGTERM saves one and stops: rerun to resume after a preemption). A different config
into a workdir that has a config.json is refused (exit 2) with one line naming every
differing key, and nothing in the workdir is touched; --resume_with_more_steps lets
train.num_steps (only that key, only upwards) grow, to train a run further. Every input
(config, workdir, dataset) is checked before anything is written.

By default it prints the run in one line, one line per validation, the result and where
it is; the full log is W/{LOG_FILE}, and --verbose prints it too.
The progress bar is drawn only on a terminal (AVLOC_PROGRESS=0/1 forces it off/on)."""

SWITCHES = {
    "resume_with_more_steps": (
        "resume a workdir whose saved config differs from the given one only by a larger "
        "train.num_steps (the learning-rate schedule is recomputed over the new total); "
        "any other differing key is still refused"
    ),
    "verbose": f"print the full log (absl INFO lines: jax, orbax, TFDS), not only W/{LOG_FILE}",
}


def main(argv: list[str]) -> int:
    values, rest = config_cli.parse(
        argv,
        PROGRAM,
        DOC,
        {"workdir": (None, "Directory for the config, logs, checkpoints and results.")},
        SWITCHES,
    )
    if rest:
        return messages.fail(PROGRAM, f"unexpected arguments {rest}", 2)
    if values.config is None or values.workdir is None:
        return messages.fail(PROGRAM, "--config and --workdir are required", 2)
    workdir = Path(values.workdir)
    # Everything from here on imports the library (the schema too), whose first log record
    # would otherwise set up logging: inside the command's logging.
    with config_cli.command_logging(values.verbose):
        config_cli.check_config(values.config, PROGRAM)  # before anything is written
        if workdir.exists() and not workdir.is_dir():
            return messages.fail(PROGRAM, f"{workdir}: not a directory; expected a workdir", 2)
        from avloc_jax.engine import train  # heavy imports after argument checks

        try:
            outcome = train.train_and_evaluate(
                values.config,
                workdir,
                resume_with_more_steps=values.resume_with_more_steps,
                log_file=LOG_FILE,
            )
        except ConfigError as err:  # bad config, workdir or dataset: nothing was written
            return messages.fail(PROGRAM, str(err), 2)
    if outcome.preempted:
        print(f"preempted at step {outcome.step}: checkpoint saved in {workdir}; rerun to resume")
        return 0
    result = {"best_step": outcome.best_step, "val": outcome.val, "test": outcome.test}
    # One line per top-level key: the same JSON as before, in 3 lines instead of 25.
    print("{" + ",\n ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in result.items()) + "}")
    sys.stdout.flush()
    print(
        f"{PROGRAM}: done: {workdir}: {layout.RESULTS_DIR}/ (val and test scores, detections), "
        f"{layout.METRICS_FILE}, {layout.TENSORBOARD_DIR}/, {layout.CHECKPOINTS_DIR}/; "
        f"full log in {layout.Workdir(workdir).log_path}",
        file=sys.stderr,
    )
    return 0
