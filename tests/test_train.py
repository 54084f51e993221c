"""The training engine: workdir contract, resume, preemption, data parallelism."""

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest
from demo_helpers import tiny_config

from avloc_jax import model as models
from avloc_jax.common import parallel
from avloc_jax.engine import train
from avloc_jax.evaluation import evaluators

REPO = Path(__file__).resolve().parents[1]


def _restore_params(config, workdir, which):
    from avloc_jax.common import parallel

    dataset = train.load_dataset(config)
    template = train.abstract_train_state(config, dataset.metadata, parallel.make_mesh())
    ckpt = train.Checkpoints(Path(workdir) / "checkpoints", 2)
    state = ckpt.restore(which, template)
    ckpt.close()
    return state


def test_workdir_contract_and_model_selection_on_val(tmp_path):
    config = tiny_config()
    outcome = train.train_and_evaluate(config, tmp_path)
    assert (tmp_path / "config.json").exists()
    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {e["event"] for e in events} >= {"train", "eval", "final"}
    assert all("step" in e for e in events)
    eval_events = [e for e in events if e["event"] == "eval"]
    # selection only ever looked at the validation split ...
    assert {e["split"] for e in eval_events} == {"validation"}
    # ... and the test split was scored exactly once, at the end
    finals = [e for e in events if e["event"] == "final"]
    assert [e["split"] for e in finals] == ["validation", "test"]
    best = max(eval_events, key=lambda e: (e["average_mAP"], -e["step"]))
    assert outcome.best_step == best["step"]
    for split in ("validation", "test"):
        result = json.loads((tmp_path / "results" / f"{split}_metrics.json").read_text())
        assert 0.0 <= result["metrics"]["average_mAP"] <= 1.0
        detections = json.loads((tmp_path / "results" / f"{split}_detections.json").read_text())
        assert set(detections) >= {"version", "results", "external_data"}
        assert len(detections["results"]) == 16
    # One orbax manager: the last 2 saves (12 and 8) and the best evaluated one are kept.
    kept = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert kept[-2:] == [8, 12] and outcome.best_step in kept and len(kept) <= 3
    best_state = _restore_params(config, tmp_path, "best")
    assert int(best_state.step) == outcome.best_step
    assert [e["is_best"] for e in eval_events] == _improvements(
        [e["average_mAP"] for e in eval_events]
    )


def _improvements(values):
    """Whether each value beats every earlier one (ties keep the earlier)."""
    return [all(v > earlier for earlier in values[:i]) for i, v in enumerate(values)]


class _StopAt(train.PreemptionFlag):
    """Acts as if SIGTERM arrived right after update `stop_step`."""

    stop_step = 0

    def __init__(self):
        super().__init__()
        self._reads = 0

    @property
    def requested(self):
        self._reads += 1
        return self._reads >= self.stop_step

    @requested.setter
    def requested(self, value):
        pass


@pytest.mark.parametrize("device_resident", [False, True])
def test_resumed_run_equals_uninterrupted_run(tmp_path, monkeypatch, device_resident):
    config = tiny_config(num_steps=12, **{"data.device_resident": device_resident})
    train.train_and_evaluate(config, tmp_path / "straight")

    # The flag is read once per step, or once per fused chunk when device-resident:
    # chunks end at events (steps 4, 6, 8, 12), so the 2nd read is after step 6.
    _StopAt.stop_step = 2 if device_resident else 6
    monkeypatch.setattr(train, "PreemptionFlag", _StopAt)
    outcome = train.train_and_evaluate(config, tmp_path / "resumed")
    assert outcome.preempted and outcome.step == 6
    monkeypatch.undo()
    outcome = train.train_and_evaluate(config, tmp_path / "resumed")
    assert outcome.start_step == 6

    straight = _restore_params(config, tmp_path / "straight", "last")
    resumed = _restore_params(config, tmp_path / "resumed", "last")
    assert int(straight.step) == int(resumed.step) == 12
    for a, b in zip(
        jax.tree_util.tree_leaves(straight.params), jax.tree_util.tree_leaves(resumed.params)
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)
    for a, b in zip(
        jax.tree_util.tree_leaves(straight.opt_state), jax.tree_util.tree_leaves(resumed.opt_state)
    ):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-6)


def test_device_resident_chunks_of_any_length_compile_once(tmp_path):
    """Log, eval and checkpoint intervals that do not divide one another (3, 5, 7) leave
    gaps of 1, 2 and 3 steps between events: one compilation serves them all, and the
    chunking does not change the numbers (the same run logged every step)."""

    def events(workdir):
        lines = (workdir / "metrics.jsonl").read_text().splitlines()
        return [e for e in map(json.loads, lines) if e["event"] == "train"]

    def config(log_every):
        return tiny_config(20, **{"data.device_resident": True, "eval.every_steps": 5,
                                  "train.checkpoint_every_steps": 7,
                                  "train.log_every_steps": log_every})  # fmt: skip

    unaligned = config(3)
    train.train_and_evaluate(unaligned, tmp_path / "unaligned")
    assert {e["train_compilations"] for e in events(tmp_path / "unaligned")} == {1}
    stepwise = config(1)
    train.train_and_evaluate(stepwise, tmp_path / "stepwise")
    by_step = {e["step"]: e for e in events(tmp_path / "stepwise")}
    for e in events(tmp_path / "unaligned"):
        np.testing.assert_allclose(e["loss/total"], by_step[e["step"]]["loss/total"], rtol=1e-6)
    a = _restore_params(unaligned, tmp_path / "unaligned", "last")
    b = _restore_params(stepwise, tmp_path / "stepwise", "last")
    for x, y in zip(jax.tree_util.tree_leaves(a.params), jax.tree_util.tree_leaves(b.params)):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=0, atol=1e-6)


def test_sigterm_mid_run_leaves_a_restorable_checkpoint(tmp_path):
    """A real `avloc train` process gets SIGTERM while training, saves and exits 0."""
    workdir = tmp_path / "run"
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / "tests")!r})
        from demo_helpers import tiny_config
        from avloc_jax.engine import train
        config = tiny_config(num_steps=100000)
        config.eval.every_steps = 100000
        config.train.checkpoint_every_steps = 100000
        outcome = train.train_and_evaluate(config, {str(workdir)!r})
        print("preempted=%s step=%d" % (outcome.preempted, outcome.step), flush=True)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    metrics = workdir / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and '"train"' in metrics.read_text()):
        time.sleep(0.5)
    assert proc.poll() is None, proc.stdout.read()
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    assert "preempted=True" in output
    step = int(output.split("step=")[1].split()[0])
    state = _restore_params(tiny_config(num_steps=100000), workdir, "last")
    assert state is not None and int(state.step) == step > 0


@pytest.mark.parametrize("device_resident", [False, True])
def test_eight_devices_give_the_same_loss_as_one(tmp_path, device_resident):
    """Data parallelism over 8 (forced CPU) devices matches 1 device to tolerance, with
    host-fed batches and with the device-resident split (fused lax.scan steps)."""
    script = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(REPO)!r}); sys.path.insert(0, {str(REPO / "tests")!r})
        import jax
        from demo_helpers import tiny_config
        from avloc_jax.engine import train
        config = tiny_config(num_steps=6)
        config.train.log_every_steps = 1 if not {device_resident} else 3
        config.data.device_resident = {device_resident}
        config.eval.every_steps = 1000
        train.train_and_evaluate(config, sys.argv[1])
        events = map(json.loads, open(sys.argv[1] + "/metrics.jsonl"))
        losses = [e["loss/total"] for e in events if e["event"] == "train"]
        print(json.dumps({{"devices": jax.device_count(), "losses": losses}}))
        """
    )
    results = {}
    for count in (1, 8):
        env = dict(
            os.environ,
            XLA_FLAGS=f"--xla_force_host_platform_device_count={count}",
            JAX_PLATFORMS="cpu",
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path / f"d{count}")],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        results[count] = json.loads(out.stdout.strip().splitlines()[-1])
    assert results[1]["devices"] == 1 and results[8]["devices"] == 8
    assert len(results[1]["losses"]) == (2 if device_resident else 6)
    np.testing.assert_allclose(results[8]["losses"], results[1]["losses"], rtol=1e-4, atol=1e-5)


def test_batch_size_must_split_over_devices():
    from avloc_jax.common import parallel

    assert parallel.local_batch_size(8, "train.batch_size") == 8
    if jax.device_count() > 1:
        with pytest.raises(ValueError, match="divisible"):
            parallel.local_batch_size(jax.device_count() + 1, "train.batch_size")


# ----------------------------------------------------------------------------- evaluators


class _FirstIsBest(evaluators.Evaluator):
    """A test evaluator: a score that falls with every run, so the first eval is best; its
    artefacts are a JSON payload and a figure."""

    config_section = "eval"  # given config.eval only
    runs = 0

    def run(self, params, source, metadata, subset):
        from matplotlib.figure import Figure

        assert set(self.config) >= {"select", "reliability_threshold"}  # its own section
        outputs = self.predict_fn(params, source)
        assert sorted(outputs) == list(range(len(source)))  # every video predicted once
        type(self).runs += 1
        figure = Figure(figsize=(1, 1), dpi=20)
        figure.subplots().plot([0, len(outputs)])
        return evaluators.EvalResult(
            {"custom_score": 1.0 / type(self).runs},
            {
                "custom": evaluators.json_artefact({"videos": len(outputs)}),
                "custom_plot": evaluators.figure_artefact(figure),
            },
        )


def test_a_registered_evaluator_runs_in_training_and_evaluate_through_the_protocol(
    tmp_path, monkeypatch, capsys
):
    from avloc_jax.cli import main as cli_main

    monkeypatch.setitem(evaluators.EVALUATORS, "first_is_best", _FirstIsBest)
    _FirstIsBest.runs = 0
    config = tiny_config(**{"evals": ("detection", "first_is_best")})
    config.eval.select = "custom_score"
    outcome = train.train_and_evaluate(config, tmp_path)
    events = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in events if e["event"] == "eval"]
    assert [e["step"] for e in evals] == [6, 12]
    assert [e["custom_score"] for e in evals] == [1.0, 0.5]
    assert [e["is_best"] for e in evals] == [True, False]
    assert all("average_mAP" in e for e in evals)  # the detection evaluator ran as well
    assert outcome.best_step == 6  # chosen by the custom metric, not by mAP
    assert int(_restore_params(config, tmp_path, "best").step) == 6
    assert outcome.test["custom_score"] == 0.25  # final val, then test
    results = tmp_path / "results"
    assert json.loads((results / "test_custom.json").read_text()) == {"videos": 16}
    assert (results / "test_custom_plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    detections = json.loads((results / "test_detections.json").read_text())
    assert set(detections) == {"version", "results", "external_data"}
    # `avloc evaluate` on the workdir (its config.json names the evaluator) runs it too.
    for name in ("test_custom.json", "test_custom_plot.png", "test_metrics.json"):
        (results / name).unlink()
    assert cli_main.main(["evaluate", f"--workdir={tmp_path}", "--split=test"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["custom_score"] == 0.2 and "average_mAP" in printed
    assert json.loads((results / "test_custom.json").read_text()) == {"videos": 16}
    assert (results / "test_custom_plot.png").stat().st_size > 0
    assert json.loads((results / "test_metrics.json").read_text())["metrics"] == printed


def test_evaluators_return_one_result_type_and_get_only_their_section():
    config = tiny_config()
    meta = train.load_dataset(config).metadata
    evals = train.build_evaluators(config, meta.task, lambda params, source: {})
    assert evals["detection"].config is config.localization
    dataset = train.load_dataset(config)
    outputs = {
        i: {
            "video_scores": np.full(meta.num_classes, 0.5),
            "posterior": np.full((len(r["visual"]), meta.num_classes + 1), 0.1),
            "reliability": np.full(len(r["visual"]), 0.5),
        }
        for i, r in enumerate(dataset.split(meta.val_split))
    }
    built = train.build_evaluators(config, meta.task, lambda params, source: outputs)
    result = train.evaluate_split(built, dataset, meta.val_split, None)
    assert isinstance(result, evaluators.EvalResult)
    assert "average_mAP" in result.metrics and set(result.artefacts) == {"detections"}
    artefact = result.artefacts["detections"]
    assert artefact.write.__module__ == "avloc_jax.data.activitynet_json"  # the format's home
    assert set(artefact.payload) == {"version", "results", "external_data"}

    class Loose(evaluators.Evaluator):
        def run(self, params, source, metadata, subset):
            return {"x": 1.0}  # a dict, not an EvalResult

    with pytest.raises(TypeError, match=r"evaluator 'loose' returned dict; expected an EvalResult"):
        evaluators.run_evaluators({"loose": Loose(None)}, None, [], meta, "test")
    twice = evaluators.EvalResult({"average_mAP": 0.0})
    with pytest.raises(ValueError, match=r"evaluator 'b' repeats the names \['average_mAP'\]"):
        evaluators.EvalResult.merge({"a": result, "b": twice})


def test_a_select_no_evaluator_produces_is_a_clear_error(tmp_path):
    config = tiny_config(num_steps=2)
    config.eval.select = "val/nope"
    with pytest.raises(ValueError, match=r"eval.select='val/nope' is not a metric .*average_mAP"):
        train.train_and_evaluate(config, tmp_path)


def test_an_unknown_evaluator_fails_before_training(tmp_path):
    config = tiny_config(**{"evals": ("detection", "no_such_eval")})
    with pytest.raises(ValueError, match=r"config key evals: .*'no_such_eval' unknown"):
        train.train_and_evaluate(config, tmp_path)
    assert not (tmp_path / "metrics.jsonl").exists()


def test_the_task_picks_the_default_evaluator_and_selection_metric():
    from avloc_jax.data.records import TASK_AVE

    config = tiny_config()
    detection = train.load_dataset(config).metadata
    ave = dataclasses.replace(detection, task=TASK_AVE)
    for meta, name, metric in ((detection, "detection", "average_mAP"), (ave, "ave", "accuracy")):
        evals = train.build_evaluators(config, meta.task, lambda params, source: {})
        assert list(evals) == [name]
        assert evaluators.selection_metric(config.eval.select, evals) == metric


def test_tensorboard_tags_hold_only_legal_characters():
    from avloc_jax.engine import writers

    record = {"split": "validation", "mAP@0.50": 0.5, "average_mAP": 0.4, "a b": 1.0}
    assert writers.scalar_tags("eval", record) == {
        "validation/mAP_0.50": 0.5,
        "validation/average_mAP": 0.4,
        "validation/a_b": 1.0,
    }
    assert writers.scalar_tags("final", record)["final/validation/mAP_0.50"] == 0.5


def test_checks_fail_before_the_workdir_is_created(tmp_path):
    from avloc_jax.common.config_checks import ConfigError

    config = tiny_config(**{"evals": ("detection", "no_such_eval")})
    with pytest.raises(ConfigError, match=r"config key evals: .*'no_such_eval' unknown"):
        train.train_and_evaluate(config, tmp_path / "w")
    config = tiny_config(**{"eval.select": ""})
    config.data.name = "thumos14"
    config.data.data_dir = str(tmp_path / "no_data")
    with pytest.raises(ConfigError, match=r"^data\.data_dir: no dataset 'thumos14'"):
        train.train_and_evaluate(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_training_and_serving_initialise_one_parameter_tree():
    """The parameters serving restores a checkpoint into are the ones training creates:
    both come from `model.inputs.init_params`."""
    from avloc_jax.serving import model_loading

    config = tiny_config()
    meta = train.load_dataset(config).metadata
    model = models.build_model(config.model, meta.num_classes)
    served = model_loading.init_params(model, meta)
    trained = train.abstract_train_state(config, meta, parallel.make_mesh()).params
    assert jax.tree.structure(served) == jax.tree.structure(trained)
    assert jax.tree.map(np.shape, served) == jax.tree.map(lambda s: s.shape, trained)


# ----------------------------------------------------------------------------- old workdirs


def test_workdirs_with_the_two_manager_layout_still_load(tmp_path):
    """Workdirs written before the single manager (checkpoints/last/<step>,
    checkpoints/best/<step>) restore in the engine and in serving."""
    from avloc_jax.serving import inference

    config = tiny_config(num_steps=8, **{"eval.every_steps": 4})
    outcome = train.train_and_evaluate(config, tmp_path)
    new = tmp_path / "checkpoints"
    old = tmp_path / "old_checkpoints"
    (old / "last").mkdir(parents=True)
    (old / "best").mkdir()
    shutil.copytree(new / "8", old / "last" / "8")
    best_step = outcome.best_step
    shutil.copytree(new / str(best_step), old / "best" / str(best_step))
    shutil.rmtree(new)
    old.rename(new)

    for which, step in (("last", 8), ("best", best_step)):
        state = _restore_params(config, tmp_path, which)
        assert int(state.step) == step
        loaded = inference.load_workdir(tmp_path, which)
        assert loaded.step == step
        for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(loaded.params)):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_profile_steps_writes_one_trace(tmp_path):
    config = tiny_config(num_steps=8, **{"train.profile_steps": 2})
    train.train_and_evaluate(config, tmp_path)
    traces = list((tmp_path / "profile").rglob("*.xplane.pb"))
    assert len(traces) == 1


def test_orbax_warning_for_unevaluated_saves_is_dropped_and_others_kept(caplog):
    """Periodic checkpoints carry no metrics by design; orbax's warning about that would
    repeat at every interval. Only that one message is dropped."""
    import logging as std_logging

    from absl import logging as absl_logging

    from avloc_jax.engine import checkpoints

    with caplog.at_level(std_logging.WARNING, logger="absl"):
        for expected in checkpoints._ExpectedOrbaxWarnings.PREFIXES:
            absl_logging.warning(expected + "=/some/dir")
        absl_logging.warning("a checkpoint could not be written")
    assert [r.getMessage() for r in caplog.records] == ["a checkpoint could not be written"]
