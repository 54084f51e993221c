"""Shared flag parsing for the commands that take an ml_collections config.

`--config=configs/X.py` loads a `get_config()` file and `--config.a.b=value` overrides
any key (ml_collections config_flags). A fresh absl FlagValues per call keeps the
commands re-entrant (tests call them in-process).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import ml_collections
from absl import flags, logging
from ml_collections import config_flags


def parse(
    argv: list[str], program: str, doc: str, extra: dict[str, tuple[str | None, str]]
) -> tuple[flags.FlagValues, list[str]]:
    """Parses `argv` with --config (a config file) plus string flags `extra`
    (name -> (default, help)). Exits 0 on --help, 2 on bad flags."""
    values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config",
        None,
        "Path to a config file with get_config().",
        flag_values=values,
        lock_config=True,
    )
    for name, (default, help_text) in extra.items():
        flags.DEFINE_string(name, default, help_text, flag_values=values)
    if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv):
        print(
            f"usage: {program} --config=configs/X.py [--config.key=value ...] "
            + " ".join(f"--{n}=..." for n in extra)
        )
        print(doc)
        print(values.main_module_help() if values.main_module_help() else "")
        for name, (default, help_text) in {
            "config": (None, "Path to a config file with get_config()."),
            **extra,
        }.items():
            print(f"  --{name}: {help_text}" + (f" (default: {default})" if default else ""))
        sys.exit(0)
    try:
        rest = values([program] + list(argv))
    except flags.Error as err:
        print(f"{program}: {err}", file=sys.stderr)
        sys.exit(2)
    logging.set_verbosity(logging.INFO)
    logging.use_absl_handler()
    return values, rest[1:]


def config_from_workdir(workdir: str) -> ml_collections.ConfigDict:
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: pass --config, or a workdir written by `avloc train`"
        )
    return ml_collections.ConfigDict(json.loads(path.read_text()))
