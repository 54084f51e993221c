"""Fixtures shared by the test modules."""

import os
import tempfile

import pytest

# Many tests train tiny models from scratch, each compiling the same train/eval steps
# again; a persistent compilation cache (shared with the tests' subprocesses through the
# environment) turns most of those compilations into cache hits.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(tempfile.gettempdir(), "avloc_jax_test_cache")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

from demo_helpers import tiny_config
from hypothesis import settings

# Property tests (hypothesis): in CI the examples are derived from the test itself
# (derandomize), so a red run is reproducible by rerunning it; locally they vary, which
# explores more inputs over time. No example database is kept in CI's fresh clone.
settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory):
    """(workdir, dataset, config) of one short demo training run, shared by the session
    (per xdist worker). Tests must not modify the workdir."""
    from avloc_jax.engine import train

    config = tiny_config(
        20,
        **{"train.log_every_steps": 10, "train.checkpoint_every_steps": 10, "eval.every_steps": 10},
    )
    workdir = tmp_path_factory.mktemp("trained_demo") / "workdir"
    train.train_and_evaluate(config, workdir)
    return workdir, train.load_dataset(config), config
