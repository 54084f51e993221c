"""One config system: defaults in configs/default.py, the allowed values in the library's
schema (avloc_jax/schema.py), one override path, validation before anything runs, and the
migration of configs saved by older versions."""

import dataclasses
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from demo_helpers import tiny_config

from avloc_jax import model as models
from avloc_jax import schema
from avloc_jax.cli import main as cli_main
from avloc_jax.common import config_migration
from avloc_jax.common.config_checks import ConfigError
from avloc_jax.common.config_overrides import apply_overrides
from configs import default

REPO = Path(__file__).resolve().parents[1]
SHIPPED = sorted(
    p.stem
    for p in (REPO / "configs").glob("*.py")
    if p.stem != "__init__" and "def get_config" in p.read_text()
)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_validates(name):
    config = importlib.import_module(f"configs.{name}").get_config()
    schema.validate(config)
    assert config.config_version == config_migration.CURRENT_VERSION


def _flat(config, prefix=""):
    """{dotted leaf key: value} of a nested config."""
    out = {}
    for key, value in config.items():
        if hasattr(value, "items"):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_the_defaults_have_exactly_the_schema_keys():
    assert sorted(_flat(default.get_config())) == sorted(schema.SCHEMA)


def test_schema_choices_are_the_implementing_modules_own_lists():
    """Each choice list is the object the implementing module defines, not a copy."""
    from avloc_jax import losses, optimizer
    from avloc_jax.data import loading, sampling
    from avloc_jax.evaluation import evaluators, localization

    owners = {
        "data.name": loading.DATASETS,
        "data.sampling": sampling.SAMPLING_MODES,
        "model.fusion": models.FUSIONS,
        "model.head": models.HEADS,
        "model.head_norm": models.HEAD_NORMS,
        "model.skip": models.SKIPS,
        "model.merge": models.MERGES,
        "model.dtype": models.DTYPES,
        "loss.pseudo_label_rule": losses.PSEUDO_LABEL_RULES,
        "train.schedule": optimizer.SCHEDULES,
        "localization.contrast_on": localization.CONTRAST_KINDS,
        "localization.nms": localization.NMS_KINDS,
        "evals": evaluators.EVALUATORS,
    }
    assert {k for k, spec in schema.SCHEMA.items() if spec.choices is not None} == set(owners)
    for key, owner in owners.items():
        assert schema.SCHEMA[key].choices is owner, key


def test_the_dataset_names_are_the_demo_and_the_built_datasets():
    import tfds_builders
    from avloc_jax.data import loading

    assert (loading.DEMO, *tfds_builders.BUILDERS) == loading.DATASETS
    for name in tfds_builders.BUILDERS:  # every built dataset's builder is where it is said
        assert tfds_builders.get_builder_class(name).name == name


def test_a_registered_evaluator_is_a_valid_choice_and_an_unknown_one_is_not(monkeypatch):
    from avloc_jax.evaluation import evaluators

    config = default.get_config()
    config.evals = ("detection", "mine")
    with pytest.raises(ConfigError) as err:
        schema.validate(config)
    assert str(err.value) == (
        "config key evals: got ('detection', 'mine'); 'mine' unknown; expected items among "
        + ", ".join(evaluators.EVALUATORS)
    )
    monkeypatch.setitem(evaluators.EVALUATORS, "mine", evaluators.EVALUATORS["detection"])
    schema.validate(config)


def test_validate_reads_saved_json_and_refuses_a_value_where_a_group_belongs():
    saved = json.loads(default.get_config().to_json_best_effort())
    schema.validate(saved)  # a plain dict, tuples as lists
    saved["loss"] = 1.0
    with pytest.raises(ConfigError, match=r"^config key loss: got 1.0; expected a group of keys$"):
        schema.validate(saved)
    saved = json.loads(default.get_config().to_json_best_effort())
    saved["model"]["fusion"] = {"kind": "concat"}
    with pytest.raises(ConfigError, match=r"^config key model.fusion: got \{'kind': 'concat'\}"):
        schema.validate(saved)


def test_data_demo_may_be_absent_only_for_other_datasets():
    config = default.get_config()
    del config.data["demo"]
    with pytest.raises(ConfigError, match=r"config key data\.demo\.num_videos\.train is missing"):
        schema.validate(config)
    config.data.name = "ave"
    schema.validate(config)


def test_library_defaults_that_restate_a_config_key_equal_the_default():
    """A library function whose parameter has a default restating a config key (callers
    that have no config use it) carries the config's default, not another value."""
    import inspect

    from avloc_jax import losses
    from avloc_jax.data import input_pipeline
    from avloc_jax.evaluation import ave_metrics
    from avloc_jax.viz import plotting

    config = _flat(default.get_config())
    restated = [
        (ave_metrics.gated_snippet_labels, "theta", "eval.reliability_threshold"),
        (plotting.video_figure, "reliability_threshold", "eval.reliability_threshold"),
        (input_pipeline.train_dataset, "sampling", "data.sampling"),
        (input_pipeline.train_batches, "sampling", "data.sampling"),
    ]
    for function, parameter, key in restated:
        assert inspect.signature(function).parameters[parameter].default == config[key], key
    # The loss functions take every config value from the caller: no default to drift.
    for function, parameter in (
        (losses.consistency_losses, "rule"),
        (losses.reliability_loss, "background_weight"),
    ):
        default_value = inspect.signature(function).parameters[parameter].default
        assert default_value is inspect.Parameter.empty, function.__name__
    # Nor do the model's modules: build_model hands them every config.model value.
    from avloc_jax import model as models

    modules = (
        models.CrossAttentionStage,
        models.MultiStageCrossAttention,
        models.ModalityEmbedding,
        models.OpenMaxHead,
        models.SoftmaxBackgroundHead,
        models.MLP,
    )
    set_by_config = set(config) | {"model.window"}  # the stage's name for attention_window
    for module in modules:
        for field in dataclasses.fields(module):
            if f"model.{field.name}" in set_by_config and field.name != "dtype":
                assert field.default is dataclasses.MISSING, f"{module.__name__}.{field.name}"


@pytest.mark.parametrize("dataset", ["activitynet12", "ave"])
def test_paper_configs_are_the_shipped_ones_with_method_notes_keys(dataset):
    from configs import paper

    assert "paper" not in SHIPPED and f"paper_{dataset}" in SHIPPED
    shipped = importlib.import_module(f"configs.{dataset}").get_config()
    written = importlib.import_module(f"configs.paper_{dataset}").get_config()

    a, b = _flat(shipped), _flat(written)
    assert a.keys() == b.keys()
    assert {k for k in a if a[k] != b[k]} <= set(paper.OVERRIDES)
    assert {k: b[k] for k in paper.OVERRIDES} == paper.OVERRIDES
    assert written.model.attention_gate is False and written.model.merge == "layernorm"


def test_tiny_test_config_validates_and_applies_dotted_overrides():
    config = tiny_config(7, **{"model.fusion": "concat", "data.eval_buckets": (24, 32)})
    schema.validate(config)
    assert config.train.num_steps == 7 and config.model.fusion == "concat"
    assert config.data.eval_buckets == (24, 32) and config.data.demo.num_videos.train == 48


def test_overrides_parse_flags_and_mappings_alike():
    from_flags = apply_overrides(
        default.get_config(),
        ["--config.train.num_steps=5", "--config.model.distance_bias=True"],
    )
    from_mapping = apply_overrides(
        default.get_config(), {"train.num_steps": 5, "model.distance_bias": True}
    )
    assert from_flags.to_dict() == from_mapping.to_dict()
    assert from_flags.train.num_steps == 5 and from_flags.model.distance_bias is True


@pytest.mark.parametrize(
    "override,expected",
    [
        ({"model.fusoin": "concat"}, "unknown config key model.fusoin; did you mean model.fusion?"),
        ({"train.num_steps": "abc"}, "config key train.num_steps: got 'abc'; expected an integer"),
        ({"model.attention_gate": "maybe"}, "config key model.attention_gate: got 'maybe'"),
    ],
)
def test_override_errors_are_one_line(override, expected):
    with pytest.raises(ConfigError) as err:
        apply_overrides(default.get_config(), override)
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "key,value,expected",
    [
        ("model.fusion", "bogus", "expected one of cross_attention, concat, visual, audio"),
        ("model.head", "softmax", "expected one of openmax, softmax_bg"),
        ("train.schedule", "linear", "expected one of cosine, constant"),
        ("loss.pseudo_label_rule", "vote", "expected one of foreground_mass, class_argmax"),
        ("localization.nms", "fancy", "expected one of soft, hard, none"),
        ("train.batch_size", 0, "expected >= 1"),
        ("eval.reliability_threshold", 1.5, "expected >= 0 and <= 1"),
        ("localization.thresholds", (0.5, 2.0), "expected every item >= 0 and <= 1"),
        ("data.eval_buckets", (32, 0.5), "expected a tuple of integers"),
        ("train.num_steps", 2.5, "expected an integer"),
        ("model.distance_bias", 1, "expected a bool"),
        ("data.data_dir", 3, "expected a string"),
    ],
)
def test_validate_names_the_key_and_what_is_allowed(key, value, expected):
    config = default.get_config()
    group, leaf = key.split(".")
    with config.unlocked(), config[group].ignore_type():
        config[group][leaf] = value
    with pytest.raises(ConfigError) as err:
        schema.validate(config)
    message = str(err.value)
    assert message.startswith(f"config key {key}: got ") and expected in message
    assert "\n" not in message


def test_validate_rejects_unknown_and_missing_keys():
    config = default.get_config()
    config.model.fusoin = "concat"
    with pytest.raises(ConfigError, match=r"model\.fusoin; did you mean model\.fusion\?$"):
        schema.validate(config)
    config = default.get_config()
    del config.loss["rel_background_weight"]
    with pytest.raises(ConfigError, match=r"loss\.rel_background_weight is missing"):
        schema.validate(config)


def test_json_round_trip_of_a_config_validates():
    # Saved configs store tuples as lists; `avloc evaluate --workdir` validates those.
    import ml_collections

    saved = json.loads(tiny_config().to_json_best_effort())
    schema.validate(ml_collections.ConfigDict(saved))


def _cli(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main.main(argv)
    err = capsys.readouterr().err
    return exit_info.value.code, err


@pytest.mark.parametrize(
    "override,expected",
    [
        (
            "--config.model.fusion=bogus",
            "avloc train: error: config key model.fusion: got 'bogus'; "
            "expected one of cross_attention, concat, visual, audio",
        ),
        (
            "--config.model.fusoin=concat",
            "avloc train: error: unknown config key model.fusoin; did you mean model.fusion?",
        ),
        (
            "--config.train.num_steps=abc",
            "avloc train: error: config key train.num_steps: got 'abc'; expected an integer",
        ),
    ],
)
def test_train_cli_rejects_bad_configs_before_writing(tmp_path, capsys, override, expected):
    workdir = tmp_path / "w"
    code, err = _cli(
        ["train", "--config=configs/demo.py", f"--workdir={workdir}", override], capsys
    )
    assert code == 2 and err.strip() == expected
    assert not workdir.exists()


def test_evaluate_cli_rejects_a_bad_override(tmp_path, capsys):
    workdir = tmp_path / "w"
    workdir.mkdir()
    code, err = _cli(
        ["evaluate", "--config=configs/demo.py", f"--workdir={workdir}", "--config.nms=hard"],
        capsys,
    )
    assert code == 2 and err.startswith("avloc evaluate: error: unknown config key nms; did you")
    assert list(workdir.iterdir()) == []


def test_train_cli_error_is_one_line_without_traceback(tmp_path):
    workdir = tmp_path / "w"
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(
        [sys.executable, "-m", "avloc_jax", "train", "--config=configs/demo.py"]
        + [f"--workdir={workdir}", "--config.model.fusion=bogus"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "avloc train: error: config key model.fusion: got 'bogus'; "
        "expected one of cross_attention, concat, visual, audio"
    ]
    assert not workdir.exists()


def test_differences_name_every_differing_leaf_by_its_dotted_key():
    from avloc_jax.common.config_checks import ABSENT, differences

    saved = json.loads(tiny_config().to_json_best_effort())  # tuples are lists in JSON
    given = tiny_config(**{"train.num_steps": 99, "model.fusion": "concat"})
    assert differences(saved, given) == [
        ("model.fusion", "cross_attention", "concat"),
        ("train.num_steps", 12, 99),
    ]
    assert differences(saved, tiny_config()) == []
    del saved["loss"]["fg_weight"]
    saved["model"]["attention_gate"] = 1  # a number is not a bool
    assert differences(saved, tiny_config()) == [
        ("model.attention_gate", 1, True),
        ("loss.fg_weight", ABSENT, 1.0),
    ]
    assert repr(ABSENT) == "absent"


def test_train_and_evaluate_validates_before_writing(tmp_path):
    from avloc_jax.engine import train

    config = tiny_config(**{"model.fusion": "concat"})
    with config.unlocked():
        config.model.fusion = "late"
    with pytest.raises(ConfigError, match="model.fusion"):
        train.train_and_evaluate(config, tmp_path / "w")
    assert not (tmp_path / "w").exists()


def test_evaluate_workdir_validates_the_config_first(tmp_path):
    from avloc_jax.engine import train

    config = default.get_config()
    config.model.fusion = "late"
    # Checked before the workdir (which has no checkpoints: FileNotFoundError otherwise).
    with pytest.raises(ConfigError, match="config key model.fusion: got 'late'"):
        train.evaluate_workdir(config, tmp_path, "test")


# ---------------------------------------------------------------------------------------
# build_model: the config as it is


def test_build_model_reads_every_model_config_key():
    """No key of config.model is dead: built with each fusion, head and head norm in
    turn, the model's parts (each built by its registry's builder) read every key."""

    class Recording:
        def __init__(self, config):
            self.config, self.read = config, set()

        def __getattr__(self, key):
            self.read.add(key)
            return getattr(self.config, key)

    read: set[str] = set()
    registries = {"fusion": models.FUSIONS, "head": models.HEADS, "head_norm": models.HEAD_NORMS}
    for key, registry in registries.items():
        for name in registry:
            model_config = default.get_config().model
            model_config[key] = name
            recording = Recording(model_config)
            models.build_model(recording, num_classes=3)
            read |= recording.read
    assert read == set(default.get_config().model.keys())
    model = models.build_model(default.get_config().model, num_classes=3)
    assert model.fusion.attention_gate is True and model.fusion.merge == "none"
    assert model.head.hidden == 128


def test_build_model_has_no_fallback_for_a_missing_key():
    model_config = default.get_config().model
    del model_config["attention_gate"]
    with pytest.raises(AttributeError, match="attention_gate"):
        models.build_model(model_config, num_classes=3)


# ---------------------------------------------------------------------------------------
# Migration of configs saved by older versions


def _version0_config() -> dict:
    """A config.json as the first version wrote it: no config_version, no attention gate,
    no pseudo-label rule, no bottom-k weight (configs/default.py at commit 6e53a70)."""
    config = json.loads(default.get_config().to_json_best_effort())
    del config["config_version"], config["data"]["demo"], config["data"]["builder_config"]
    for key in ("attention_gate", "attention_gate_frozen"):
        del config["model"][key]
    for key in ("pseudo_label_rule", "rel_background_weight"):
        del config["loss"][key]
    del config["evals"], config["eval"]["select"], config["train"]["profile_steps"]
    config["data"]["name"] = "activitynet12"
    config["model"]["merge"] = "layernorm"  # the first default
    return config


def test_migrate_version0_fills_the_old_behaviour():
    old = _version0_config()
    new = config_migration.migrate(old)
    assert new["config_version"] == config_migration.CURRENT_VERSION == 2
    assert new["model"]["attention_gate"] is False
    assert new["model"]["attention_gate_frozen"] is False
    assert new["loss"]["pseudo_label_rule"] == "class_argmax"
    assert new["loss"]["rel_background_weight"] == 1.0
    assert new["data"]["builder_config"] == ""
    assert new["evals"] == [] and new["eval"]["select"] == ""  # the task's own evaluator
    assert new["train"]["profile_steps"] == 0
    assert new["model"]["merge"] == "layernorm"  # saved values are kept
    assert new["model"]["head_norm"] == "none"
    assert "config_version" not in old and "attention_gate" not in old["model"]  # a copy
    import ml_collections

    schema.validate(ml_collections.ConfigDict(new))


def test_migrate_version1_adds_no_head_norm():
    """A config saved at version 1 (before model.head_norm): the head saw the fused
    features unnormalised, so the upgrade says "none" whatever today's default is."""
    import ml_collections

    old = json.loads(default.get_config().to_json_best_effort())
    old["config_version"] = 1
    del old["model"]["head_norm"]
    old["model"]["fusion"] = "concat"
    new = config_migration.migrate(old)
    assert new["config_version"] == 2 and new["model"]["head_norm"] == "none"
    assert new["model"]["fusion"] == "concat" and "head_norm" not in old["model"]
    schema.validate(ml_collections.ConfigDict(new))
    with pytest.raises(ConfigError, match="head_norm"):
        schema.validate(ml_collections.ConfigDict(old | {"config_version": 2}))


def test_migrate_keeps_current_configs_and_rejects_newer_ones():
    current = json.loads(default.get_config().to_json_best_effort())
    assert config_migration.migrate(current) == current
    with pytest.raises(ValueError, match="config_version 3 is newer"):
        config_migration.migrate({**current, "config_version": 3})


def test_read_config_migrates_a_saved_config(tmp_path):
    from avloc_jax.serving import inference

    (tmp_path / "config.json").write_text(json.dumps(_version0_config()))
    config = inference.read_config(tmp_path)
    assert config.config_version == 2 and config.model.attention_gate is False
    assert config.loss.pseudo_label_rule == "class_argmax"
    assert models.build_model(config.model, num_classes=3).fusion.attention_gate is False


@pytest.mark.parametrize(
    "overrides,builder_config,heldout",
    [
        ({"data.name": "ave", "data.weak_setting": True}, "weak", 0.1),
        ({"data.name": "ave"}, None, 0.1),
        ({"data.name": "generic", "data.builder_config": "mine"}, "mine", 0.1),
        ({"data.name": "activitynet12", "data.val_fraction": 0.25}, None, 0.25),
    ],
)
def test_loader_passes_the_data_config_explicitly(monkeypatch, overrides, builder_config, heldout):
    from avloc_jax.data import datasets, loading

    calls = []
    monkeypatch.setattr(
        datasets, "load_dataset", lambda *args, **kwargs: calls.append((args, kwargs))
    )
    loading.load_dataset(apply_overrides(default.get_config(), overrides))
    ((args, kwargs),) = calls
    assert args == (overrides["data.name"], "")
    assert kwargs == {"builder_config": builder_config, "heldout_fraction": heldout}
