"""Shared flag parsing for the commands that take an ml_collections config.

`--config=configs/X.py` loads a `get_config()` file and `--config.a.b=value` overrides
any key, through the one override helper (`avloc_jax.common.config_overrides`, on
ml_collections config_flags). A fresh absl FlagValues per call keeps the commands
re-entrant (tests call them in-process). Config problems end in one line,
`<program>: error: <message>`, and exit status 2, before anything is written.

`command_logging(verbose)` sets up what a command prints while it runs: by default only
`common.progress.run_log`'s lines (plain) and warnings; `--verbose` restores absl's INFO
log lines (jax, orbax, TFDS, the metric writers).
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import NoReturn

import ml_collections
from absl import flags
from absl import logging as absl_logging
from ml_collections import config_flags

from avloc_jax.common import config_overrides, progress
from avloc_jax.common.config_checks import ConfigError
from avloc_jax.common.workdir import Workdir


def parse(
    argv: list[str],
    program: str,
    doc: str,
    extra: dict[str, tuple[str | None, str]],
    switches: dict[str, str] | None = None,
) -> tuple[flags.FlagValues, list[str]]:
    """Parses `argv` with --config (a config file) plus string flags `extra`
    (name -> (default, help)) and boolean flags `switches` (name -> help; off unless
    given as --name). Exits 0 on --help, 2 on bad flags."""
    switches = switches or {}
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
    for name, help_text in switches.items():
        flags.DEFINE_bool(name, False, help_text, flag_values=values)
    if any(a in ("-h", "--help", "-help", "--helpfull") for a in argv):
        print(
            f"usage: {program} --config=configs/X.py [--config.key=value ...] "
            + " ".join([f"--{n}=..." for n in extra] + [f"[--{n}]" for n in switches])
        )
        print(doc)
        print(values.main_module_help() if values.main_module_help() else "")
        for name, (default, help_text) in {
            "config": (None, "Path to a config file with get_config()."),
            **extra,
        }.items():
            print(f"  --{name}: {help_text}" + (f" (default: {default})" if default else ""))
        for name, help_text in switches.items():
            print(f"  --{name}: {help_text}")
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
    return values, rest[1:]


def fail(program: str, message: str) -> NoReturn:
    """The one-line error of a bad command line or config: exit status 2, no traceback."""
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(2)


def check_config(config: ml_collections.ConfigDict, program: str) -> None:
    """Exits 2 with one line unless `config` passes the schema (`avloc_jax.schema`).

    Call it inside `command_logging`: the schema imports the library (grain, orbax),
    and a log record at import time would otherwise install a root handler."""
    from avloc_jax import schema  # imports the modules whose choices it lists

    try:
        schema.validate(config)
    except ConfigError as err:
        fail(program, str(err))


def config_from_workdir(workdir: str) -> ml_collections.ConfigDict:
    """The workdir's saved config, upgraded from older versions (config_migration) and
    validated (ConfigError naming the file and the key)."""
    from avloc_jax import schema

    saved = Workdir(workdir)
    if not saved.config_path.exists():
        raise FileNotFoundError(
            f"{saved.config_path}: not found; expected a workdir written by `avloc train`, "
            "or pass --config"
        )
    try:
        return ml_collections.ConfigDict(saved.read_config(validate=schema.validate))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """`warnings.showwarning` while a command runs: a WARNING record of the warning's module."""
    logging.getLogger(category.__module__).warning("%s", message)


@contextlib.contextmanager
def command_logging(verbose: bool) -> Iterator[None]:
    """What a command prints while the block runs; restored afterwards (tests run the
    commands in-process).

    verbose: absl's handler, INFO and up from every library (jax, orbax, TFDS, clu).
    Otherwise: `progress.run_log`'s lines as they are, other records only from WARNING
    up (`WARNING <logger>: message`). In both, the loggers pass INFO records on, so that a
    log file a command adds to the root logger (the workdir's log) receives the detail.
    Python warnings (e.g. detection_eval's about ignored predictions) become such records
    too, named by the warning's module: one line each, not a file name and a source line.
    """
    root = logging.getLogger()
    absl_handler = absl_logging.get_absl_handler()
    saved_level, saved_handlers = root.level, list(root.handlers)
    saved_verbosity = absl_logging.get_verbosity()
    added: list[tuple[logging.Logger, logging.Handler]] = []
    if verbose:
        absl_logging.use_absl_handler()
        absl_logging.set_verbosity(absl_logging.INFO)
    else:
        if absl_handler in root.handlers:
            root.removeHandler(absl_handler)
        absl_logging.set_verbosity(absl_logging.INFO)  # the 'absl' logger (orbax, TFDS)
        root.setLevel(logging.INFO)
        warning_lines = progress.StderrHandler()
        warning_lines.setLevel(logging.WARNING)
        warning_lines.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        lines = progress.StderrHandler()
        lines.setFormatter(logging.Formatter("%(message)s"))
        added = [(root, warning_lines), (progress.run_log, lines)]
    progress.run_log.setLevel(logging.INFO)
    for logger, handler in added:
        logger.addHandler(handler)
    saved_showwarning = warnings.showwarning
    warnings.showwarning = _log_warning
    try:
        yield
    finally:
        warnings.showwarning = saved_showwarning
        for logger, handler in added:
            logger.removeHandler(handler)
        for handler in list(root.handlers):
            if handler not in saved_handlers:
                root.removeHandler(handler)
        for handler in saved_handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        absl_logging.set_verbosity(saved_verbosity)
        root.setLevel(saved_level)
        progress.run_log.setLevel(logging.NOTSET)
