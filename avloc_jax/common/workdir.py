"""The on-disk layout of a training workdir W, owned here and nowhere else.

    W/config.json            the resolved config of the run (config_migration upgrades
                             an older one; `Workdir.read_config` reads it)
    W/dataset_metadata.json  class names, feature sizes, seconds per snippet
    W/checkpoints/           one orbax manager: a step directory per save; evaluated saves
                             carry metrics {SELECTION: value, STEP: step}, ranked by `rank`.
                             Older workdirs have checkpoints/last/ and checkpoints/best/.
    W/results/               <split>_metrics.json and <split>_<artifact>.json
    W/metrics.jsonl          one JSON object per logged event
    W/tensorboard/           TensorBoard event files
    W/train.log              the full log of `avloc train` (INFO and up)
    W/profile/               a profiler trace (train.profile_steps > 0)

The engine writes this layout and serving reads it; both ask this module for every path,
and for the checkpoint ranking, so that the two cannot drift apart. It is in the common
layer: it imports only common modules and the standard library.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from avloc_jax.common import config_migration
from avloc_jax.common.config_checks import ConfigError

CONFIG_FILE = "config.json"
DATASET_METADATA_FILE = "dataset_metadata.json"
CHECKPOINTS_DIR = "checkpoints"
RESULTS_DIR = "results"
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
LOG_FILE = "train.log"
PROFILE_DIR = "profile"

# Keys of the metrics saved with each evaluated checkpoint (orbax stores them as JSON).
SELECTION = "selection"
STEP = "step"
LEGACY = ("last", "best")  # the two-manager layout of older workdirs (checkpoints/<which>/)


def rank(metrics: dict[str, Any]) -> tuple[float, int]:
    """Orbax's best_fn (with best_mode="max"): the higher the selection metric the better;
    ties keep the earlier step (a later equal score is no improvement)."""
    return float(metrics[SELECTION]), -int(metrics[STEP])


def checkpoint_metrics(metric: float | None, step: int) -> dict[str, Any] | None:
    """The metrics saved with a checkpoint: None for an unevaluated save."""
    return None if metric is None else {SELECTION: float(metric), STEP: int(step)}


@dataclasses.dataclass(frozen=True)
class Workdir:
    """The paths of one workdir and the reading of its saved config."""

    path: Path

    def __init__(self, path: Path | str):
        object.__setattr__(self, "path", Path(path))

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def dataset_metadata_path(self) -> Path:
        return self.path / DATASET_METADATA_FILE

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    @property
    def results_dir(self) -> Path:
        return self.path / RESULTS_DIR

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / TENSORBOARD_DIR

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def profile_dir(self) -> Path:
        return self.path / PROFILE_DIR

    def results_path(self, split: str, kind: str) -> Path:
        """results/<split>_<kind>.json (kind: "metrics" or an evaluator's artifact name)."""
        return self.results_dir / f"{split}_{kind}.json"

    def legacy_checkpoints_dir(self, which: str) -> Path:
        """checkpoints/last or checkpoints/best of an older workdir (may not exist)."""
        if which not in LEGACY:
            raise ValueError(f"checkpoint must be one of {', '.join(LEGACY)}; got {which!r}")
        return self.checkpoints_dir / which

    def checkpoint_steps(self) -> list[int]:
        """The steps saved under checkpoints/ (orbax step directories), in order; temporary
        directories of an unfinished save and the legacy last/ and best/ are not steps."""
        if not self.checkpoints_dir.is_dir():
            return []
        return sorted(
            int(p.name) for p in self.checkpoints_dir.iterdir() if p.is_dir() and p.name.isdigit()
        )

    def read_config(self, validate: Callable[[Any], None] | None = None) -> dict[str, Any]:
        """config.json as a plain nested dict, upgraded by config_migration and, with
        `validate` (avloc_jax.schema.validate, which every caller passes), checked.
        Raises FileNotFoundError if it is missing, ValueError naming the file if it is
        not a saved config this code reads, and ConfigError naming the file and the key
        if `validate` refuses it."""
        path = self.config_path
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: not found; expected a workdir written by `avloc train`"
            )
        config = config_migration.read_saved(path)  # ValueErrors name the path
        if validate is not None:
            try:
                validate(config)
            except ConfigError as err:
                raise ConfigError(f"{path}: {err}") from None
        return config
