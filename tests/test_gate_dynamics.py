"""Gate dynamics: mean |g| per stage and modality in the train events (metrics.jsonl and
TensorBoard), and the bench script that plots them."""

import importlib
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from demo_helpers import tiny_config

from avloc_jax import model as models
from avloc_jax.engine import state as train_state
from avloc_jax.engine import train, writers

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
gate_dynamics = importlib.import_module("gate_dynamics")


def _params(**model_overrides):
    config = tiny_config()
    config.model.update(model_overrides)
    model = models.build_model(config.model, num_classes=3)
    x = jnp.zeros((1, 6, 4))
    return model.init(jax.random.key(0), x, x, jnp.ones((1, 6), bool))["params"]


def test_gate_magnitudes_name_every_gate_and_average_its_absolute_value():
    params = _params(num_stages=3)
    params["fusion"]["visual_gate_1"] = jnp.array([-1.0, 3.0] + [0.0] * 14)
    magnitudes = train_state.gate_magnitudes(params)
    assert list(magnitudes) == [f"gate/{m}_{s}" for m in ("audio", "visual") for s in range(3)]
    assert float(magnitudes["gate/visual_1"]) == pytest.approx(4.0 / 16)
    assert float(magnitudes["gate/audio_0"]) == 0.0  # initialised to 0
    assert train_state.gate_magnitudes(_params(fusion="concat")) == {}
    assert train_state.gate_magnitudes(_params(attention_gate=False)) == {}


def _train_events(workdir):
    lines = (Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == "train"]


def test_train_events_log_the_gates_and_the_plot_reads_them(tmp_path):
    train.train_and_evaluate(tiny_config(8), tmp_path / "full")
    events = _train_events(tmp_path / "full")
    assert [e["step"] for e in events] == [4, 8]
    expected = {"gate/audio_0", "gate/audio_1", "gate/visual_0", "gate/visual_1"}
    for event in events:
        assert expected <= set(event)
        assert {k for k in event if k.startswith("gate/")} == expected
    # The gates start at 0 and training opens them (lr > 0 after the 2-step warm-up).
    assert all(events[-1][k] > 0 for k in expected)
    # TensorBoard: the same values under their own gate/ tags.
    scalars = writers.read_scalars(tmp_path / "full" / "tensorboard")
    for key in expected:
        assert [s for s, _ in scalars[key]] == [4, 8]
        np.testing.assert_allclose(
            [v for _, v in scalars[key]], [e[key] for e in events], rtol=1e-6
        )
    series = gate_dynamics.read_gate_series(tmp_path / "full")
    assert set(series) == expected and [s for s, _ in series["gate/audio_1"]] == [4, 8]

    # The control holds its gates at exactly 0; concat has none to log.
    train.train_and_evaluate(
        tiny_config(4, **{"model.attention_gate_frozen": True}), tmp_path / "gate0"
    )
    (frozen,) = _train_events(tmp_path / "gate0")
    assert all(frozen[k] == 0.0 for k in expected)

    out = tmp_path / "fig" / "gates.png"
    code = gate_dynamics.main(
        [str(tmp_path / "full"), str(tmp_path / "gate0"), "--out", str(out),
         "--labels", "full,gate0", "--json", str(tmp_path / "gates.json")]
    )  # fmt: skip
    assert code == 0 and out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((tmp_path / "gates.json").read_text())
    assert set(payload["runs"]) == {"full", "gate0"}
    assert payload["runs"]["gate0"]["gate/visual_0"] == [[4, 0.0]]
