"""Data parallelism with `jax.jit` and shardings (no pmap), single- or multi-host.

One mesh axis, ``data``: parameters and optimizer state are replicated, batches are
split on their leading axis. Each process feeds only its local slice of the global batch,
and `jax.make_array_from_process_local_data` assembles the global array, so the same code
runs on one CPU, one GPU, a multi-GPU host or a TPU pod.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def maybe_initialize_distributed(requested: bool) -> None:
    """Calls `jax.distributed.initialize()` when the config asks for it or when the
    environment names a coordinator (JAX_COORDINATOR_ADDRESS, as set by launchers).
    Cluster environments (TPU pods, SLURM) fill in the arguments themselves."""
    if jax.distributed.is_initialized():
        return
    if requested or os.environ.get("JAX_COORDINATOR_ADDRESS"):
        logging.info("Initializing jax.distributed")
        jax.distributed.initialize()


def make_mesh() -> Mesh:
    return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def batch_sharded(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def local_batch_size(
    global_batch_size: int, what: str = "batch_size", *, process_count: int | None = None
) -> int:
    """The per-process share of a global batch, checking that it splits evenly.

    By default over this run's JAX processes, and the batch must split over every device
    (each device gets whole examples). With an explicit `process_count` (the host input
    pipeline, which also runs without devices, e.g. to test multi-process slicing) the batch
    must split over those processes.
    """
    if process_count is None:
        divisor, label, process_count = (
            jax.device_count(),
            "the number of devices",
            jax.process_count(),
        )
    else:
        divisor, label = process_count, "process_count"
    if global_batch_size <= 0 or global_batch_size % divisor:
        raise ValueError(
            f"{what}={global_batch_size} must be positive and divisible by {label} ({divisor})"
        )
    return global_batch_size // process_count


def to_global(batch: dict[str, np.ndarray], sharding: NamedSharding) -> dict[str, jax.Array]:
    """Process-local NumPy batch -> global jax.Arrays sharded on the leading axis."""
    return jax.tree.map(
        lambda x: jax.make_array_from_process_local_data(sharding, np.asarray(x)), batch
    )


def is_main_process() -> bool:
    return jax.process_index() == 0


def any_process(flag: bool) -> bool:
    """True if `flag` is set on any process (a collective: every process must call it)."""
    if jax.process_count() == 1:
        return flag
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.asarray([flag]))))


def tree_size(tree: Any) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree_util.tree_leaves(tree)))
