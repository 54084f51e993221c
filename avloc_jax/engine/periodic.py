"""The training loop's bookkeeping: when an event is due, the train-time window, the
workdir's log file. No config passes through here (engine/train.py reads it)."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from avloc_jax.engine.writers import periodic_actions


class Due(periodic_actions.PeriodicCallback):
    """clu's PeriodicCallback, due at every `every`-th step and at the last step.

    clu's own `every_steps` wants one call per step; device-resident runs advance by fused
    chunks that end exactly at the next due step of any event (`steps_to_next_event`), so
    this one is checked at whatever step the loop reaches. The callback gets the step, the
    time and the call's keywords."""

    def __init__(self, every: int, last: int, callback: Callable[..., None]):
        super().__init__(callback_fn=callback)
        self.every, self.last = every, last

    def _should_trigger(self, step: int, t: float) -> bool:
        return step % self.every == 0 or step == self.last

    def steps_to_next(self, step: int) -> int:
        return min((step // self.every + 1) * self.every, self.last) - step


def steps_to_next_event(step: int, events: Sequence[Due]) -> int:
    """Steps from `step` to the next step any event is due at (or to the end)."""
    return min(event.steps_to_next(step) for event in events)


class TrainWindow:
    """Train steps and wall time since the last train log (evaluation excluded)."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        self.start, self.steps = time.perf_counter(), 0

    def add(self, count: int) -> None:
        self.steps += count

    def rates(self, batch_size: int) -> dict[str, float]:
        """steps_per_sec and videos_per_sec over the window, which then restarts."""
        elapsed = time.perf_counter() - self.start
        rates = {
            "steps_per_sec": self.steps / elapsed,
            "videos_per_sec": self.steps * batch_size / elapsed,
        }
        self.restart()
        return rates


@contextlib.contextmanager
def log_to_file(path: Path | None) -> Iterator[None]:
    """Appends every log record (INFO and up, as far as the loggers' levels let them
    through) to `path` while the block runs; nothing when `path` is None."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path)
    handler.setLevel(logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()
