"""common/workdir.py: the one owner of a workdir's on-disk layout.

The literal names below are the layout itself: old workdirs on disk have them, so a
change here is a format change (config_migration / a legacy reader), not a refactor."""

import json
from pathlib import Path

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from avloc_jax.common import workdir
from avloc_jax.common.config_checks import ConfigError
from avloc_jax.common.workdir import Workdir
from avloc_jax.schema import validate as _validate
from configs import default


def test_paths_are_the_on_disk_layout(tmp_path):
    w = Workdir(str(tmp_path))  # a str is accepted too
    assert w.path == tmp_path
    assert w.config_path == tmp_path / "config.json"
    assert w.dataset_metadata_path == tmp_path / "dataset_metadata.json"
    assert w.checkpoints_dir == tmp_path / "checkpoints"
    assert w.results_dir == tmp_path / "results"
    assert w.results_path("val", "metrics") == tmp_path / "results" / "val_metrics.json"
    assert w.results_path("test", "detections") == tmp_path / "results" / "test_detections.json"
    assert w.metrics_path == tmp_path / "metrics.jsonl"
    assert w.tensorboard_dir == tmp_path / "tensorboard"
    assert w.log_path == tmp_path / "train.log"
    assert w.profile_dir == tmp_path / "profile"
    assert w.legacy_checkpoints_dir("best") == tmp_path / "checkpoints" / "best"
    assert w.legacy_checkpoints_dir("last") == tmp_path / "checkpoints" / "last"
    with pytest.raises(ValueError, match="'latest'"):
        w.legacy_checkpoints_dir("latest")


def test_other_modules_use_the_layout_names():
    from avloc_jax.cli import train as train_cli
    from avloc_jax.data import metadata_file
    from avloc_jax.serving import inference

    assert train_cli.LOG_FILE == workdir.LOG_FILE
    assert metadata_file.METADATA_FILE == workdir.DATASET_METADATA_FILE
    assert inference.CONFIG_FILE == workdir.CONFIG_FILE


def test_checkpoint_steps_lists_step_directories_only(tmp_path):
    w = Workdir(tmp_path)
    assert w.checkpoint_steps() == []  # no checkpoints/ yet
    for name in ("2", "10", "1", "3.orbax-checkpoint-tmp-99", "last", "best"):
        (w.checkpoints_dir / name).mkdir(parents=True)
    (w.checkpoints_dir / "7").write_text("not a directory")
    assert w.checkpoint_steps() == [1, 2, 10]


def _saved_config(tmp_path, edit=None, version=None):
    config = json.loads(default.get_config().to_json_best_effort())
    if version == 0:  # as saved before config_version and the keys of migration 0 -> 1
        del config["config_version"], config["model"]["attention_gate"]
        del config["model"]["head_norm"], config["loss"]["pseudo_label_rule"]
    if edit:
        edit(config)
    (tmp_path / "config.json").write_text(json.dumps(config))
    return config


def test_read_config_migrates_and_validates_an_old_config(tmp_path):
    _saved_config(tmp_path, version=0)
    config = Workdir(tmp_path).read_config(validate=_validate)
    assert config["config_version"] == 2
    assert config["model"]["attention_gate"] is False  # the old behaviour, not today's
    assert config["model"]["head_norm"] == "none"
    assert config["loss"]["pseudo_label_rule"] == "class_argmax"


def test_read_config_refuses_an_invalid_config_naming_file_and_key(tmp_path):
    _saved_config(tmp_path, edit=lambda c: c["model"].update(fusion="telepathy"))
    assert Workdir(tmp_path).read_config()["model"]["fusion"] == "telepathy"  # unvalidated
    with pytest.raises(ConfigError) as raised:
        Workdir(tmp_path).read_config(validate=_validate)
    message = str(raised.value)
    assert str(tmp_path / "config.json") in message
    assert "model.fusion" in message and "telepathy" in message
    assert "\n" not in message


def test_read_config_errors_name_the_file(tmp_path):
    path = tmp_path / "config.json"
    with pytest.raises(FileNotFoundError, match="config.json: not found"):
        Workdir(tmp_path).read_config()
    path.write_text("{not json")
    with pytest.raises(ValueError, match=f"{path}: not valid JSON"):
        Workdir(tmp_path).read_config()
    _saved_config(tmp_path, edit=lambda c: c.update(config_version=99))
    with pytest.raises(ValueError, match=f"{path}: config_version 99 is newer"):
        Workdir(tmp_path).read_config()


def test_rank_prefers_higher_selection_then_the_earlier_step():
    saves = [
        {"selection": 0.5, "step": 10},
        {"selection": 0.7, "step": 30},
        {"selection": 0.7, "step": 20},  # ties with step 30: the earlier step wins
        {"selection": 0.7, "step": 40},
        {"selection": 0.6, "step": 50},
    ]
    assert max(saves, key=workdir.rank)["step"] == 20
    order = [m["step"] for m in sorted(saves, key=workdir.rank, reverse=True)]
    assert order == [20, 30, 40, 50, 10]
    assert workdir.checkpoint_metrics(None, 5) is None
    assert workdir.checkpoint_metrics(np.float32(0.25), np.int64(5)) == {
        "selection": 0.25,
        "step": 5,
    }


@flax.struct.dataclass
class _State:
    step: jax.Array
    params: dict


def test_engine_saves_and_serving_restores_the_same_best(tmp_path):
    """engine.checkpoints writes, serving.inference reads: both rank through workdir.rank,
    so the tie (steps 2 and 3 equal) resolves to the same, earlier, step on both sides."""
    from avloc_jax.engine.checkpoints import Checkpoints
    from avloc_jax.serving import inference

    w = Workdir(tmp_path)
    checkpoints = Checkpoints(w.checkpoints_dir, keep=1)
    scores = {1: 0.5, 2: 0.8, 3: 0.8, 4: None}
    for step, score in scores.items():
        state = _State(jnp.asarray(step), {"w": jnp.full((2,), float(step))})
        checkpoints.save(state, score)
    restored = checkpoints.restore("best", state)
    checkpoints.close()
    assert int(restored.step) == 2
    # keep=1 keeps the last save (4) and the best evaluated one (2)
    assert w.checkpoint_steps() == [2, 4]

    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    abstract = {"w": jax.ShapeDtypeStruct((2,), jnp.float32, sharding=sharding)}
    params, step = inference.restore_params(w.checkpoints_dir, "best", abstract)
    assert step == 2 and np.asarray(params["w"]).tolist() == [2.0, 2.0]
    params, step = inference.restore_params(w.checkpoints_dir, "last", abstract)
    assert step == 4 and np.asarray(params["w"]).tolist() == [4.0, 4.0]


def _workdir_contract():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import workdir_contract

    return workdir_contract


def test_the_workdir_contract_reads_the_names_from_the_owner_and_finds_path_spellings():
    contract = _workdir_contract()
    names = contract.layout_names(Path(workdir.__file__).read_text())
    assert names == {
        workdir.CONFIG_FILE,
        workdir.DATASET_METADATA_FILE,
        workdir.CHECKPOINTS_DIR,
        workdir.RESULTS_DIR,
        workdir.METRICS_FILE,
        workdir.TENSORBOARD_DIR,
        workdir.LOG_FILE,
        workdir.PROFILE_DIR,
    }
    source = "\n".join(
        [
            "import os",
            "from pathlib import Path",
            'a = Path(w) / "results"',  # 3: a directory joined into a path
            'b = "metrics.jsonl"',  # 4: a file name, anywhere
            'c = os.path.join(w, "checkpoints")',  # 5
            'd = Path(w).joinpath("tensorboard", x)',  # 6
            'e = {"results": []}',  # the ActivityNet key: not a path
            'f = "see the checkpoints"',  # prose
        ]
    )
    assert contract.spellings(source, names) == [
        (3, "results"),
        (4, "metrics.jsonl"),
        (5, "checkpoints"),
        (6, "tensorboard"),
    ]


def test_no_other_module_spells_a_workdir_path():
    """The lint-imports contract (pyproject.toml, `workdir_paths`) over the packages as
    they are: only common/workdir.py names workdir artefacts."""
    import grimp

    contract = _workdir_contract()
    graph = grimp.build_graph("avloc_jax", "tfds_builders", "configs")
    check = contract.WorkdirPathsContract(
        "workdir paths", {}, {"owner": "avloc_jax.common.workdir"}
    ).check(graph, verbose=False)
    assert check.metadata["violations"] == []
    assert check.kept
