"""Upgrades configs saved by older versions (a workdir's or a bundle's config.json).

A saved config describes the run that produced its checkpoints, so a key added later
must be filled with the value that reproduces the OLD behaviour, never with today's
default. `config_version` counts these steps; a config without it is version 0.

Version 0 -> 1 (the keys added after the first config, from the git history of
configs/default.py, models.py and losses.py):
  model.attention_gate = False         models were ungated before the gate existed
  model.attention_gate_frozen = False  (the gate's control did not exist either)
  loss.pseudo_label_rule = 'class_argmax'  the only rule before foreground_mass
  loss.rel_background_weight = 1.0     L_rel's bottom-k term had full weight
  data.builder_config = ''             (read by the loader, but not declared as a key)
  evals = ()                           the dataset task's standard evaluator, as before
  eval.select = ''                     that evaluator's metric selected the checkpoint
  train.profile_steps = 0              no profiling

Version 1 -> 2:
  model.head_norm = 'none'             the fused features went to the head unnormalised
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

CURRENT_VERSION = 2
VERSION_KEY = "config_version"


def _v0_to_v1(config: dict[str, Any]) -> None:
    model, loss = config.setdefault("model", {}), config.setdefault("loss", {})
    config.setdefault("data", {}).setdefault("builder_config", "")
    model.setdefault("attention_gate", False)
    model.setdefault("attention_gate_frozen", False)
    loss.setdefault("pseudo_label_rule", "class_argmax")
    loss.setdefault("rel_background_weight", 1.0)
    config.setdefault("evals", [])
    config.setdefault("eval", {}).setdefault("select", "")
    config.setdefault("train", {}).setdefault("profile_steps", 0)


def _v1_to_v2(config: dict[str, Any]) -> None:
    config.setdefault("model", {}).setdefault("head_norm", "none")


# _STEPS[v] upgrades version v to v + 1 in place.
_STEPS: dict[int, Callable[[dict[str, Any]], None]] = {0: _v0_to_v1, 1: _v1_to_v2}


def migrate(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of `config` (a plain nested dict, e.g. parsed config.json) upgraded to
    CURRENT_VERSION. Raises ValueError for a version newer than this code."""
    upgraded = copy.deepcopy(dict(config))
    version = upgraded.get(VERSION_KEY, 0)  # version 0 had no such key
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise ValueError(f"{VERSION_KEY} must be a non-negative integer; got {version!r}")
    if version > CURRENT_VERSION:
        raise ValueError(
            f"{VERSION_KEY} {version} is newer than this version of avloc-jax reads "
            f"({CURRENT_VERSION}); upgrade avloc-jax"
        )
    for step in range(version, CURRENT_VERSION):
        _STEPS[step](upgraded)
    upgraded[VERSION_KEY] = CURRENT_VERSION
    return upgraded


def read_saved(path: str | Path) -> dict[str, Any]:
    """A saved config.json, upgraded to CURRENT_VERSION (a plain nested dict). Raises
    FileNotFoundError if it is missing, ValueError (naming `path`) if it is not a JSON
    object of a version this code reads."""
    path = Path(path)
    text = path.read_text()
    try:
        config = json.loads(text)
    except ValueError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object (a saved config)")
    try:
        return migrate(config)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
