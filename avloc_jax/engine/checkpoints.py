"""Checkpoints and preemption: one orbax CheckpointManager and a SIGTERM flag.

Layout (common/workdir.py owns it): every save is a step directory of the workdir's
checkpoints directory. Orbax's preservation policy keeps the last `train.keep_checkpoints`
saves and, among the saves made at evaluations (the only ones with metrics), the best by
the validation metric (`workdir.rank`). Older workdirs have one manager each under
`last/` and `best/`; they are still read. `serving/inference.py:restore_params` reads the
same layout through the same module.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint.checkpoint_managers import preservation_policy

from avloc_jax.common.workdir import LEGACY, checkpoint_metrics, rank


class _ExpectedOrbaxWarnings(logging.Filter):
    """Drops orbax's warnings about what this module does by design:
    - a save without metrics: the periodic saves between evaluations have none (LatestN
      keeps them, BestN ranks the evaluated ones), so it would fire at every interval;
    - a read-only directory: that is what `avloc evaluate` asks for (`read_only`)."""

    PREFIXES = (
        "Requested `tracked_metric`; did not provide metrics.",
        "Given directory is read only",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.PREFIXES)


logging.getLogger("absl").addFilter(_ExpectedOrbaxWarnings())


class Checkpoints:
    """The run's checkpoints: the last `keep` saves plus the best evaluated one.

    `read_only` (for `avloc evaluate`): restores only; creates, saves and deletes nothing."""

    def __init__(self, directory: Path, keep: int, read_only: bool = False):
        self.directory = Path(directory).absolute()
        policy = preservation_policy.AnyPreservationPolicy(
            [
                preservation_policy.LatestN(n=keep),
                preservation_policy.BestN(
                    get_metric_fn=rank, n=1, keep_checkpoints_without_metrics=False
                ),
            ]
        )
        options = ocp.CheckpointManagerOptions(
            best_fn=rank,  # orbax sorts by it: a tuple key works
            best_mode="max",
            preservation_policy=policy,
            create=not read_only,
            read_only=read_only,
            save_interval_steps=0 if read_only else 1,
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def save(self, state: Any, metric: float | None = None) -> bool:
        """Saves `state` at its step (with `metric` when evaluated). Returns whether the
        step is now the best evaluated one. A step saved already is not saved again."""
        step = int(state.step)
        if self.manager.latest_step() != step:
            metrics = checkpoint_metrics(metric, step)
            self.manager.save(step, args=ocp.args.StandardSave(state), metrics=metrics, force=True)
        # best_step ranks the checkpoint infos orbax keeps in memory: no read-back of
        # metrics that an async save may not have written yet.
        return metric is not None and self.manager.best_step() == step

    def reached_preemption(self, step: int) -> bool:
        """Multi-host: whether jax's preemption sync point is `step` (see PreemptionFlag)."""
        return self.manager.reached_preemption(step)

    def restore(self, which: str, template: Any) -> Any | None:
        """The 'last' or 'best' train state, or None; reads the legacy layout too."""
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        self.manager.wait_until_finished()  # the step may still be being written
        if self.manager.latest_step() is not None:
            # best_step is None until an evaluated save: orbax ranks only saves with metrics.
            step = self.manager.latest_step() if which == "last" else self.manager.best_step()
            if step is not None:
                return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))
        return self._restore_legacy(which, abstract)

    def _restore_legacy(self, which: str, abstract: Any) -> Any | None:
        path = self.directory / which
        if which not in LEGACY or not path.is_dir():
            return None
        legacy = ocp.CheckpointManager(path, options=ocp.CheckpointManagerOptions(read_only=True))
        try:
            step = legacy.latest_step()  # the best manager kept only its best step
            if step is None:
                return None
            return legacy.restore(step, args=ocp.args.StandardRestore(abstract))
        finally:
            legacy.close()

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


class PreemptionFlag:
    """Whether to save a checkpoint and stop, asked once per loop iteration.

    Single process: a SIGTERM handler sets a flag, read locally (free). Several
    processes: they must all stop after the same step, or the collectives of the next
    step hang. Instead of an allgather of the flag at every step, jax's preemption
    service (set up by jax.distributed.initialize, which catches SIGTERM itself) agrees
    on a sync step in the background; `CheckpointManager.reached_preemption(step)` is a
    local check of that agreement. So no Python handler is installed there.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def __enter__(self) -> PreemptionFlag:
        if jax.process_count() > 1:
            return self
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: preemption handling is the caller's
            self._previous = None
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        logging.warning("SIGTERM received: saving a checkpoint and stopping")
        self.requested = True

    def reached(self, step: int, checkpoints: Checkpoints) -> bool:
        if jax.process_count() > 1:
            return checkpoints.reached_preemption(step)
        return bool(self.requested)

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
