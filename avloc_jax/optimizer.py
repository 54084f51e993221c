"""The optimizer of `config.train`: AdamW, a learning-rate schedule, global-norm clipping.

`SCHEDULES` lists the values of `train.schedule` (avloc_jax/schema.py imports it); each is
built by `learning_rate_schedule` here and nowhere else.
"""

from __future__ import annotations

from typing import Any

import optax

SCHEDULES = ("cosine", "constant")


def learning_rate_schedule(
    schedule: str, peak: float, warmup_steps: int, num_steps: int
) -> optax.Schedule:
    """Linear warm-up from 0 to `peak` over `warmup_steps`, then cosine decay to 0 at
    `num_steps` ("cosine") or `peak` held ("constant")."""
    warmup = max(warmup_steps, 1)
    if schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            0.0, peak, warmup, max(num_steps, warmup_steps + 1)
        )
    if schedule == "constant":
        return optax.join_schedules(
            [optax.linear_schedule(0.0, peak, warmup), optax.constant_schedule(peak)], [warmup]
        )
    raise ValueError(f"train.schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")


def make_optimizer(train_config: Any) -> tuple[optax.GradientTransformation, optax.Schedule]:
    """(AdamW with `learning_rate_schedule` and optional global-norm clipping, the schedule)
    from `config.train` (learning_rate, warmup_steps, num_steps, schedule, weight_decay,
    grad_clip_norm)."""
    schedule = learning_rate_schedule(
        train_config.schedule,
        train_config.learning_rate,
        train_config.warmup_steps,
        train_config.num_steps,
    )
    transforms = []
    if train_config.grad_clip_norm:
        transforms.append(optax.clip_by_global_norm(train_config.grad_clip_norm))
    transforms.append(optax.adamw(schedule, weight_decay=train_config.weight_decay))
    return optax.chain(*transforms), schedule
