"""TFDS builders (ArrayRecord, no TensorFlow) for the datasets avloc trains on.

  ave            AVE (AVE-ECCV18 h5 files); configs 'default' and 'weak'
  activitynet12  ActivityNet1.2 in the W-TALC layout
  thumos14       THUMOS14 (20 detection classes) in the W-TALC layout
  generic        users' own per-video .npy features + ActivityNet-format GT JSON

Build with ``avloc build-data NAME --data-dir D --manual-dir M`` (docs/data.md); read
with ``avloc_jax.data.datasets.load_dataset``. Builder modules are imported on demand, so
importing this package does not register anything with TFDS.
"""

from __future__ import annotations

import importlib

from avloc_jax.data.loading import BUILT_DATASETS

# name -> (module, class): tfds_builders/NAME/NAME_dataset_builder.py holds class Name.
BUILDERS: dict[str, tuple[str, str]] = {
    name: (f"tfds_builders.{name}.{name}_dataset_builder", name.capitalize())
    for name in BUILT_DATASETS
}


def get_builder_class(name: str):
    """The builder class of dataset `name` (imports and registers it with TFDS)."""
    if name not in BUILDERS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(BUILDERS)}")
    module, cls = BUILDERS[name]
    return getattr(importlib.import_module(module), cls)
