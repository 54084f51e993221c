"""The dataset a config names: the built-in demo data, or one built by `avloc build-data`."""

from __future__ import annotations

import ml_collections

from avloc_jax.common.config_checks import ConfigError
from avloc_jax.data import demo_data
from avloc_jax.data.annotations import DataError
from avloc_jax.data.records import Dataset

DEMO = "demo"  # generated from the config (data.demo), nothing to build
# The datasets `avloc build-data` builds; each NAME has its builder in
# tfds_builders/NAME/NAME_dataset_builder.py (tfds_builders.BUILDERS is made from this).
BUILT_DATASETS = ("ave", "activitynet12", "thumos14", "generic")
DATASETS = (DEMO, *BUILT_DATASETS)  # the values of data.name


def load_dataset(config: ml_collections.ConfigDict) -> Dataset:
    """The built-in demo data (generated from the config seed), or a TFDS dataset."""
    if config.data.name == DEMO:
        return demo_data.make_dataset(config.data.demo, seed=config.seed)
    from avloc_jax.data import datasets  # imports tensorflow_datasets, only needed here

    data = config.data
    # AVE's weak setting is its own build; an explicit data.builder_config wins.
    weak = data.name == "ave" and data.weak_setting
    builder_config = data.builder_config or ("weak" if weak else None)
    return datasets.load_dataset(
        data.name, data.data_dir, builder_config=builder_config, heldout_fraction=data.val_fraction
    )


def declared_snippet_seconds(config: ml_collections.ConfigDict) -> float | None:
    """The visual snippet length in seconds that the config states: the demo's
    `data.demo.visual_snippet_seconds`; None for a built dataset (whose length is in its
    metadata or estimated: `metadata_file.seconds_per_snippet`)."""
    if config.data.name == DEMO:
        return float(config.data.demo.visual_snippet_seconds)
    return None


def open_dataset(config: ml_collections.ConfigDict) -> Dataset:
    """`load_dataset`, with a missing or unreadable dataset as a one-line ConfigError
    naming data.data_dir (`avloc train` and `avloc evaluate` check it before writing)."""
    try:
        return load_dataset(config)
    except (OSError, DataError) as err:
        raise ConfigError(f"data.data_dir: {err}") from None
