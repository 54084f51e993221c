"""Fixtures shared by the test modules."""
import pytest

from demo_helpers import tiny_config


@pytest.fixture(scope="session")
def trained_demo(tmp_path_factory):
    """(workdir, dataset, config) of one short demo training run, shared by the session
    (per xdist worker). Tests must not modify the workdir."""
    from avloc_jax import train

    config = tiny_config(20, **{"train.log_every_steps": 10, "train.checkpoint_every_steps": 10, "eval.every_steps": 10})
    workdir = tmp_path_factory.mktemp("trained_demo") / "workdir"
    train.train_and_evaluate(config, workdir)
    return workdir, train.load_dataset(config), config
