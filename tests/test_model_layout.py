"""Checkpoints of the recorded parameter layout load into today's model.

tests/golden/model_layout.json and tests/golden/model_checkpoint/ were written by the
model as it was before `AVLocModel` took its fusion and head as submodules
(tests/golden/record_model_layout.py says what they hold). No parameter path changed, so
no path migration is needed: these tests prove it, for every fusion and head.
"""

import json
import sys
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
sys.path.insert(0, str(GOLDEN_DIR))

import record_model_layout as recorded  # noqa: E402

GOLDEN = json.loads(recorded.LAYOUT.read_text())


def test_the_recorder_and_the_fixture_describe_the_same_models():
    assert GOLDEN["dims"] == recorded.DIMS
    assert GOLDEN["variants"] == recorded.VARIANTS


@pytest.mark.parametrize("variant", sorted(recorded.VARIANTS))
def test_parameter_paths_shapes_and_initial_values_are_the_recorded_ones(variant):
    """Same paths and shapes (a checkpoint restores by path), and the same initial values:
    flax derives a module's init random stream from its path, so a module renamed or
    moved would change them, and with them every trained number."""
    want = GOLDEN["layout"][variant]
    got = recorded.describe(recorded.init_params(recorded.build(recorded.VARIANTS[variant])))
    assert list(got) == list(want), variant
    for path, leaf in want.items():
        assert got[path]["shape"] == leaf["shape"], path
        for stat in ("sum", "abs_sum"):
            assert got[path][stat] == pytest.approx(leaf[stat], rel=1e-5, abs=1e-6), (path, stat)


def test_a_checkpoint_of_the_recorded_layout_restores_and_computes_the_same_function():
    model = recorded.build(recorded.VARIANTS["default"])
    abstract = jax.eval_shape(lambda: recorded.init_params(model))
    restored = ocp.StandardCheckpointer().restore(
        recorded.CHECKPOINT.absolute(), {"params": abstract}
    )["params"]
    assert jax.tree_util.tree_structure(restored) == jax.tree_util.tree_structure(abstract)
    outputs = recorded.outputs(model, restored)
    assert sorted(outputs) == sorted(GOLDEN["default_outputs"])
    for key, want in GOLDEN["default_outputs"].items():
        np.testing.assert_allclose(outputs[key], want, rtol=1e-5, atol=1e-6, err_msg=key)
    # The checkpoint holds the recorded model's initial parameters: today's init gives them.
    fresh = recorded.init_params(model)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6),
        fresh,
        restored,
    )
