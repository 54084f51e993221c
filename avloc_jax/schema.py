"""The config schema: every key, its type and its allowed values, and `validate`.

configs/default.py holds the default of every key and nothing else; this module says what
each key may hold. Choice lists are not written here: each is imported from the module
that implements the choice (a new fusion, schedule or evaluator is allowed as soon as it
exists there). Bounds are written here, once. tests/test_config.py checks that
`configs/default.py`'s keys are exactly `SCHEMA`'s and that every shipped config passes.

Every config goes through `validate` before it is used: the one `avloc train` or
`avloc evaluate` is given (after its --config.* overrides), and every config read from
disk (a workdir's or a bundle's config.json, after `common.config_migration`; through
`common.workdir.Workdir.read_config(validate=validate)`).

Layering: above the modules it takes choices from (data, model, losses, optimizer,
evaluation), below engine / serving / cli, which validate with it.
"""

from __future__ import annotations

from typing import Any

from avloc_jax import losses, model, optimizer
from avloc_jax.common import config_checks, config_migration
from avloc_jax.common.config_checks import Bounds, ConfigError, Key
from avloc_jax.data import demo_data, loading, sampling
from avloc_jax.evaluation import evaluators, localization

__all__ = ["SCHEMA", "ConfigError", "Key", "validate"]

# Inclusive (low, high) ranges; None = unbounded. For a tuple, every item.
COUNT: Bounds = (1, None)  # a positive integer
NONNEGATIVE: Bounds = (0, None)
FRACTION: Bounds = (0, 1)


def _choice(choices: Any) -> Key:
    return Key(str, choices=choices)


_DEMO: dict[str, Key] = {
    **{f"data.demo.num_videos.{split}": Key(int, bounds=COUNT) for split in demo_data.SPLITS},
    "data.demo.num_classes": Key(int, bounds=COUNT),
    "data.demo.pair_fraction": Key(float, bounds=FRACTION),
    "data.demo.silent_fraction": Key(float, bounds=FRACTION),
    "data.demo.pair_visual_offset": Key(float),
    "data.demo.min_seconds": Key(int, bounds=COUNT),
    "data.demo.max_seconds": Key(int, bounds=COUNT),
    "data.demo.visual_dim": Key(int, bounds=COUNT),
    "data.demo.audio_dim": Key(int, bounds=COUNT),
    "data.demo.visual_snippet_seconds": Key(float),
    "data.demo.audio_snippet_seconds": Key(float),
    "data.demo.max_misalignment_seconds": Key(float),
    "data.demo.temporal_correlation": Key(float),
    "data.demo.max_instances": Key(int, bounds=COUNT),
    "data.demo.min_instance_seconds": Key(int),
    "data.demo.background_only_fraction": Key(float, bounds=FRACTION),
    "data.demo.visual_strength": Key(float),
    "data.demo.audio_strength": Key(float),
    "data.demo.context_strength": Key(float),
    "data.demo.context_seconds": Key(float),
    "data.demo.music_probability": Key(float, bounds=FRACTION),
    "data.demo.music_strength": Key(float),
    "data.demo.scene_std": Key(float),
    "data.demo.noise_std": Key(float),
}

SCHEMA: dict[str, Key] = {
    "config_version": Key(
        int, bounds=(config_migration.CURRENT_VERSION, config_migration.CURRENT_VERSION)
    ),
    "seed": Key(int, bounds=NONNEGATIVE),
    # --- data (avloc_jax/data)
    "data.name": _choice(loading.DATASETS),
    "data.data_dir": Key(str),
    "data.builder_config": Key(str),
    "data.num_snippets": Key(int, bounds=COUNT),
    "data.sampling": _choice(sampling.SAMPLING_MODES),
    "data.eval_buckets": Key(tuple, item_type=int, bounds=COUNT),
    "data.val_fraction": Key(float, bounds=(0, 0.99)),
    "data.weak_setting": Key(bool),
    "data.device_resident": Key(bool),
    **_DEMO,
    # --- model (avloc_jax/model)
    "model.fusion": _choice(model.FUSIONS),
    "model.head": _choice(model.HEADS),
    "model.head_norm": _choice(model.HEAD_NORMS),
    "model.embed_dim": Key(int, bounds=COUNT),
    "model.num_stages": Key(int, bounds=COUNT),
    "model.num_heads": Key(int, bounds=COUNT),
    "model.skip": _choice(model.SKIPS),
    "model.merge": _choice(model.MERGES),
    "model.attention_gate": Key(bool),
    "model.attention_gate_frozen": Key(bool),
    "model.attention_window": Key(int, bounds=NONNEGATIVE),
    "model.distance_bias": Key(bool),
    "model.conv_kernel": Key(int, bounds=NONNEGATIVE),
    "model.dropout_rate": Key(float, bounds=(0, 0.99)),
    "model.dtype": _choice(model.DTYPES),
    # --- loss (avloc_jax/losses.py)
    "loss.topk_ratio": Key(float, bounds=(1, None)),
    "loss.mil_weight": Key(float, bounds=NONNEGATIVE),
    "loss.fg_weight": Key(float, bounds=NONNEGATIVE),
    "loss.rel_weight": Key(float, bounds=NONNEGATIVE),
    "loss.class_consistency_weight": Key(float, bounds=NONNEGATIVE),
    "loss.reliability_consistency_weight": Key(float, bounds=NONNEGATIVE),
    "loss.consistency_window": Key(int, bounds=NONNEGATIVE),
    "loss.consistency_threshold": Key(float, bounds=FRACTION),
    "loss.pseudo_label_rule": _choice(losses.PSEUDO_LABEL_RULES),
    "loss.rel_background_weight": Key(float, bounds=NONNEGATIVE),
    "loss.consistency_warmup_steps": Key(int, bounds=NONNEGATIVE),
    # --- train (avloc_jax/optimizer.py, avloc_jax/engine)
    "train.num_steps": Key(int, bounds=COUNT),
    "train.batch_size": Key(int, bounds=COUNT),
    "train.learning_rate": Key(float, bounds=NONNEGATIVE),
    "train.warmup_steps": Key(int, bounds=NONNEGATIVE),
    "train.schedule": _choice(optimizer.SCHEDULES),
    "train.weight_decay": Key(float, bounds=NONNEGATIVE),
    "train.grad_clip_norm": Key(float, bounds=NONNEGATIVE),
    "train.log_every_steps": Key(int, bounds=COUNT),
    "train.checkpoint_every_steps": Key(int, bounds=COUNT),
    "train.keep_checkpoints": Key(int, bounds=COUNT),
    "train.profile_steps": Key(int, bounds=NONNEGATIVE),
    # --- evaluation (avloc_jax/evaluation)
    "eval.every_steps": Key(int, bounds=COUNT),
    "eval.batch_size": Key(int, bounds=COUNT),
    "eval.reliability_threshold": Key(float, bounds=FRACTION),
    "eval.select": Key(str),
    # The registry itself: an evaluator registered later is allowed too.
    "evals": Key(tuple, item_type=str, choices=evaluators.EVALUATORS),
    "localization.class_threshold": Key(float, bounds=FRACTION),
    "localization.cas_smoothing": Key(int, bounds=NONNEGATIVE),
    "localization.upsample": Key(int, bounds=COUNT),
    "localization.thresholds": Key(tuple, item_type=float, bounds=FRACTION),
    "localization.min_length_snippets": Key(float, bounds=NONNEGATIVE),
    "localization.outer_margin": Key(float, bounds=NONNEGATIVE),
    "localization.contrast_on": _choice(localization.CONTRAST_KINDS),
    "localization.video_score_weight": Key(float, bounds=NONNEGATIVE),
    "localization.nms": _choice(localization.NMS_KINDS),
    "localization.soft_nms_sigma": Key(float),
    "localization.nms_iou": Key(float, bounds=FRACTION),
    "localization.top_n": Key(int, bounds=NONNEGATIVE),
    # --- distribution (avloc_jax/common/parallel.py)
    "distributed.initialize": Key(bool),
}


def validate(config: Any) -> None:
    """Raises ConfigError (one line naming the key and what is allowed) unless `config`
    (a ConfigDict or a plain nested dict, e.g. a parsed config.json) has exactly the keys
    of `SCHEMA`, each of its type and allowed values.

    `data.demo` may be absent when data.name is not the demo (configs saved before it was
    a key did not carry it; it is read only for the demo)."""
    # A presence test, not a default: a missing group or key is `check`'s to name.
    data = config["data"] if "data" in config and hasattr(config["data"], "keys") else {}
    if not ("name" in data and data["name"] == loading.DEMO) and "demo" not in data:
        schema = {k: v for k, v in SCHEMA.items() if not k.startswith("data.demo.")}
    else:
        schema = SCHEMA
    config_checks.check(config, schema)
