"""Shared test helpers: a demo config that trains in seconds."""

from configs import demo


def tiny_config(num_steps: int = 12, **overrides):
    """A tiny demo run: 48/16/16 short videos, a 16-wide model, batch 8.

    `overrides` are dotted keys, e.g. tiny_config(20, **{"eval.every_steps": 10}).
    """
    config = demo.get_config()
    config.data.demo.num_videos = {"train": 48, "validation": 16, "test": 16}
    config.data.demo.min_seconds = 16
    config.data.demo.max_seconds = 32
    config.data.num_snippets = 24
    config.data.eval_buckets = (32,)
    config.model.embed_dim = 16
    config.train.num_steps = num_steps
    config.train.batch_size = 8
    config.train.warmup_steps = 2
    config.train.log_every_steps = 4
    config.train.checkpoint_every_steps = 4
    config.eval.every_steps = 6
    config.eval.batch_size = 8
    config.loss.consistency_warmup_steps = 4
    for key, value in overrides.items():
        node = config
        *path, leaf = key.split(".")
        for part in path:
            node = node[part]
        node[leaf] = value
    return config
