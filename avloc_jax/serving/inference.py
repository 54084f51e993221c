"""Inference with a trained model: loading (workdir or bundle), input checks, forward pass.

Two modules, gathered here under one import path
(``from avloc_jax.serving import inference``):

* `serving.model_loading`: a **workdir** written by `avloc train` (its config, its best or
  last checkpoint's parameters, its dataset metadata) or a **bundle** written by `avloc
  export` (self-contained: config, metadata, parameters); writing bundles;
* `serving.prediction`: checked feature files, the one predict function of
  `evaluation.predict` on files, records or a dataset split, and the ActivityNet
  prediction JSON of the outputs.
"""

from __future__ import annotations

from avloc_jax.common.workdir import CONFIG_FILE
from avloc_jax.data.metadata_file import METADATA_FILE
from avloc_jax.data.records import resample_time
from avloc_jax.serving.model_loading import (
    BUNDLE_FILE,
    BUNDLE_FORMAT,
    BUNDLE_PARAMS_DIR,
    BUNDLE_VERSION,
    InputError,
    LoadedModel,
    Notice,
    abstract_params,
    init_params,
    is_bundle,
    load,
    load_bundle,
    load_workdir,
    read_config,
    restore_params,
    stderr_notice,
    workdir_metadata,
    write_bundle,
)
from avloc_jax.serving.prediction import (
    BACKGROUND,
    PAD_MULTIPLE,
    check_compatible,
    load_features,
    load_split_dataset,
    open_split,
    predict_files,
    predict_records,
    predict_split,
    predict_video,
    predictions_json,
    prepare_inputs,
    serving_batch_size,
    snippet_labels,
    video_duration,
)

__all__ = [
    "BACKGROUND",
    "BUNDLE_FILE",
    "BUNDLE_FORMAT",
    "BUNDLE_PARAMS_DIR",
    "BUNDLE_VERSION",
    "CONFIG_FILE",
    "METADATA_FILE",
    "PAD_MULTIPLE",
    "InputError",
    "LoadedModel",
    "Notice",
    "abstract_params",
    "check_compatible",
    "init_params",
    "is_bundle",
    "load",
    "load_bundle",
    "load_features",
    "load_split_dataset",
    "load_workdir",
    "open_split",
    "predict_files",
    "predict_records",
    "predict_split",
    "predict_video",
    "predictions_json",
    "prepare_inputs",
    "read_config",
    "resample_time",
    "restore_params",
    "serving_batch_size",
    "snippet_labels",
    "stderr_notice",
    "video_duration",
    "workdir_metadata",
    "write_bundle",
]
