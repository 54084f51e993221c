"""Shared flag parsing for the commands that take an ml_collections config.

`--config=configs/X.py` loads a `get_config()` file and `--config.a.b=value` overrides
any key, through the one override helper (`avloc_jax.common.config_overrides`, on
ml_collections config_flags). A fresh absl FlagValues per call keeps the commands
re-entrant (tests call them in-process). Config problems end in one line,
`<program>: error: <message>`, and exit status 2, before anything is written.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import ml_collections
from absl import flags, logging
from ml_collections import config_flags

from avloc_jax.common import config_migration, config_overrides
from avloc_jax.common.config_checks import ConfigError


def parse(
    argv: list[str], program: str, doc: str, extra: dict[str, tuple[str | None, str]]
) -> tuple[flags.FlagValues, list[str]]:
    """Parses `argv` with --config (a config file) plus string flags `extra`
    (name -> (default, help)). Exits 0 on --help, 2 on bad flags."""
    overrides, argv = config_overrides.split_overrides(argv)
    values = flags.FlagValues()
    config_flags.DEFINE_config_file(
        "config",
        None,
        "Path to a config file with get_config().",
        flag_values=values,
        lock_config=True,
        sys_argv=[program] + argv,  # the overrides are applied below, not by this flag
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
        fail(program, str(err).splitlines()[0])
    if overrides:
        if values.config is None:
            fail(program, f"{overrides[0]} needs --config=FILE before it")
        try:
            config_overrides.apply_overrides(values.config, overrides)
        except ConfigError as err:
            fail(program, str(err))
    logging.set_verbosity(logging.INFO)
    logging.use_absl_handler()
    return values, rest[1:]


def fail(program: str, message: str) -> NoReturn:
    """The one-line error of a bad command line or config: exit status 2, no traceback."""
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(2)


def check_config(config: ml_collections.ConfigDict, program: str) -> None:
    """Exits 2 with one line unless `config` passes configs/default.py's `validate`."""
    from configs import default

    try:
        default.validate(config)
    except ConfigError as err:
        fail(program, str(err))


def config_from_workdir(workdir: str) -> ml_collections.ConfigDict:
    """The workdir's saved config, upgraded from older versions (config_migration)."""
    path = Path(workdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: pass --config, or a workdir written by `avloc train`"
        )
    try:
        return ml_collections.ConfigDict(config_migration.migrate(json.loads(path.read_text())))
    except ValueError as err:
        raise ConfigError(f"{path}: {err}") from None
