"""Shared test helpers: a demo config that trains in seconds."""

from avloc_jax.common.config_overrides import apply_overrides
from configs import demo


def tiny_config(num_steps: int = 12, **overrides):
    """A tiny demo run: 48/16/16 short videos, a 16-wide model, batch 8.

    `overrides` are dotted keys, e.g. tiny_config(20, **{"eval.every_steps": 10}).
    """
    config = demo.get_config()
    # The tiny run itself, then the caller's overrides: both through the one override path
    # (ml_collections config_flags), as `avloc train --config.a.b=v` would apply them.
    tiny = {
        "data.demo.num_videos": {"train": 48, "validation": 16, "test": 16},
        "data.demo.min_seconds": 16,
        "data.demo.max_seconds": 32,
        "data.num_snippets": 24,
        "data.eval_buckets": (32,),
        "model.embed_dim": 16,
        "train.num_steps": num_steps,
        "train.batch_size": 8,
        "train.warmup_steps": 2,
        "train.log_every_steps": 4,
        "train.checkpoint_every_steps": 4,
        "eval.every_steps": 6,
        "eval.batch_size": 8,
        "loss.consistency_warmup_steps": 4,
    }
    return apply_overrides(config, {**tiny, **overrides})
