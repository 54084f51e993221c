"""The one way to override config keys: ml_collections config_flags.

`avloc train --config.a.b=v`, the tests' `tiny_config(**{"a.b": v})` and bench/ scripts
all go through `apply_overrides`, so a value is parsed against the key's type the same
way everywhere, and an unknown key or a bad value ends in one `ConfigError` line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import ml_collections
from absl import flags
from ml_collections import config_flags

from avloc_jax.common.config_checks import ConfigError, type_name, unknown_key_error

_NAME = "config"
_OVERRIDE = re.compile(rf"^-{{1,2}}(no)?{_NAME}\.([^=]+)(=.*)?$")


def is_override(arg: str) -> bool:
    """Whether `arg` is a `--config.a.b[=v]` override (or absl's `--noconfig.a.b`)."""
    return _OVERRIDE.match(arg) is not None


def split_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(overrides, the other arguments); `--config.a.b v` (space-separated) is kept whole."""
    overrides: list[str] = []
    rest: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if is_override(arg):
            if "=" not in arg and i + 1 < len(args) and not args[i + 1].startswith("-"):
                arg = f"{arg}={args[i + 1]}"
                i += 1
            overrides.append(arg)
        else:
            rest.append(arg)
        i += 1
    return overrides, rest


def as_flags(overrides: Mapping[str, Any]) -> list[str]:
    """{"a.b": v} as the command-line flags ["--config.a.b=v"] that apply_overrides and
    `avloc train` read (strings as they are, everything else as a Python literal)."""
    return [
        f"--{_NAME}.{key}={value if isinstance(value, str) else repr(value)}"
        for key, value in overrides.items()
    ]


def _key_exists(config: ml_collections.ConfigDict, key: str) -> bool:
    node: Any = config
    for part in key.split("."):
        if not hasattr(node, "keys") or part not in node:
            return False
        node = node[part]
    return True


def _value_at(config: ml_collections.ConfigDict, key: str) -> Any:
    node: Any = config
    for part in key.split("."):
        node = node[part]
    return node


def _bad_value_error(
    err: flags.Error, config: ml_collections.ConfigDict, args: list[str]
) -> ConfigError:
    """The one-line message for a value config_flags could not parse."""
    for arg in args:
        match = _OVERRIDE.match(arg)
        if match and f"--{_NAME}.{match.group(2)}" in str(err):
            key, raw = match.group(2), (match.group(3) or "=")[1:]
            expected = type_name(_value_at(config, key))
            return ConfigError(f"config key {key}: got {raw!r}; expected {expected}")
    return ConfigError(str(err).splitlines()[0])


def apply_overrides(
    config: ml_collections.ConfigDict, overrides: Sequence[str] | Mapping[str, Any]
) -> ml_collections.ConfigDict:
    """Overrides keys of `config` in place (and returns it).

    Args:
      config: the config to change.
      overrides: flags as on the command line (["--config.model.fusion=concat", ...]) or
        a mapping of dotted keys to values ({"model.fusion": "concat"}).
    Raises:
      ConfigError: an unknown key (with the closest known key) or an unparsable value.
    """
    if isinstance(overrides, Mapping):
        args = as_flags(overrides)
    else:
        args = list(overrides)
    for arg in args:
        match = _OVERRIDE.match(arg)
        if match is None:
            raise ConfigError(f"not a config override: {arg!r}; expected --{_NAME}.KEY=VALUE")
        if not _key_exists(config, match.group(2)):
            raise unknown_key_error(match.group(2), config)
    if not args:
        return config
    values = flags.FlagValues()
    argv = ["avloc"] + args
    config_flags.DEFINE_config_dict(
        _NAME, config, flag_values=values, lock_config=False, sys_argv=argv
    )
    try:
        values(argv)
    except flags.Error as err:
        raise _bad_value_error(err, config, args) from None
    return values[_NAME].value
