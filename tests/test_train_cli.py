"""`avloc train` / `avloc evaluate` as a user runs them: resume safety, input errors
before anything is written, and a quiet default output.

One short demo training through the real command (a subprocess) is shared by the module;
tests that train further or are refused work on copies of its workdir.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from avloc_jax.cli import main as cli_main
from avloc_jax.common import config_migration
from avloc_jax.common.config_checks import ConfigError
from avloc_jax.engine import writers

REPO = Path(__file__).resolve().parents[1]
STEPS = ["--config.train.num_steps=20", "--config.eval.every_steps=10"]
DEMO = ["train", "--config=configs/demo.py"]


def _avloc(args, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "AVLOC_PROGRESS": "0"}
    return subprocess.run(
        [sys.executable, "-m", "avloc_jax", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """(completed process, workdir) of one 20-step demo training via `avloc train`."""
    workdir = tmp_path_factory.mktemp("cli") / "demo"
    proc = _avloc([*DEMO, f"--workdir={workdir}", *STEPS])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, workdir


@pytest.fixture
def demo_copy(demo_run, tmp_path):
    """A copy of the shared demo workdir that a test may change."""
    copy = tmp_path / "demo"
    shutil.copytree(demo_run[1], copy)
    return copy


def _snapshot(root: Path) -> dict:
    """Every path under `root` with its kind, size, mtime and content hash."""
    found = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        found[str(path.relative_to(root))] = (digest, stat.st_size, stat.st_mtime_ns)
    return found


def _cli(argv, capsys):
    """(exit status, stdout, stderr) of `avloc ...` run in-process."""
    try:
        code = cli_main.main(argv)
    except SystemExit as exit_info:
        code = exit_info.code
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- quiet


def test_a_demo_training_prints_a_few_lines_and_its_result(demo_run):
    proc, workdir = demo_run
    lines = (proc.stdout + proc.stderr).splitlines()
    assert len(lines) <= 25, "\n".join(lines)
    assert "is illegal" not in proc.stdout + proc.stderr
    # stdout: exactly the result JSON, with today's keys
    result = json.loads(proc.stdout)
    assert list(result) == ["best_step", "val", "test"] and result["best_step"] in (10, 20)
    assert 0 <= result["val"]["average_mAP"] <= 1 and "mAP@0.50" in result["test"]
    # stderr: the run in one line, one line per validation, the result, where it is
    err = proc.stderr.splitlines()
    assert err[0].startswith("demo: 480 train, 120 validation, 160 test videos, 8 classes")
    assert "20 steps of batch 16" in err[0] and err[0].endswith("from scratch")
    assert [line.split(":")[0] for line in err if line.startswith("step ")] == [
        "step 10/20",
        "step 20/20",
    ]
    assert any(line.startswith("best step ") for line in err)
    assert err[-1].startswith(f"avloc train: done: {workdir}") and "train.log" in err[-1]
    assert len(err) == 5
    # the detail went to the log file, not to the terminal
    log = (workdir / "train.log").read_text()
    assert "checkpoint" in log.lower() and "is illegal" not in log


def test_tensorboard_tags_are_legal_names(demo_run):
    _, workdir = demo_run
    tags = set(writers.read_scalars(workdir / "tensorboard"))
    assert {"validation/mAP_0.50", "final/test/mAP_0.50", "validation/average_mAP"} <= tags
    assert not [t for t in tags if "@" in t]
    # metrics.jsonl keeps the metric names as they are
    events = [json.loads(x) for x in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert "mAP@0.50" in next(e for e in events if e["event"] == "eval")


def test_verbose_prints_the_library_detail(demo_copy):
    proc = _avloc([*DEMO, f"--workdir={demo_copy}", *STEPS, "--verbose"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(proc.stderr.splitlines()) > 25
    assert "checkpoint_manager.py" in proc.stderr  # orbax's INFO lines
    assert "is illegal" not in proc.stderr
    assert json.loads(proc.stdout)["best_step"] in (10, 20)


# ----------------------------------------------------------------------------- resume


def test_a_different_config_is_refused_and_the_workdir_untouched(demo_copy, capsys):
    before = _snapshot(demo_copy)
    argv = [*DEMO, f"--workdir={demo_copy}", "--config.train.num_steps=10"]
    code, out, err = _cli([*argv, "--config.eval.every_steps=10", "--config.seed=1"], capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [err.strip()]  # one line
    assert err.startswith(f"avloc train: error: {demo_copy / 'config.json'}: ")
    assert "seed (saved 0, given 1)" in err and "train.num_steps (saved 20, given 10)" in err
    assert "eval.every_steps" not in err
    # a config left at the demo's defaults names every key that differs
    code, _, err = _cli([*DEMO, f"--workdir={demo_copy}"], capsys)
    assert code == 2 and "train.num_steps (saved 20, given 500)" in err
    assert "eval.every_steps (saved 10, given 100)" in err
    assert _snapshot(demo_copy) == before


def test_more_steps_need_the_flag_and_the_flag_allows_nothing_else(demo_copy, capsys):
    before = _snapshot(demo_copy)
    more = [*DEMO, f"--workdir={demo_copy}", "--config.train.num_steps=30"]
    more += ["--config.eval.every_steps=10"]
    code, _, err = _cli(more, capsys)
    assert code == 2 and "train.num_steps (saved 20, given 30)" in err
    assert "--resume_with_more_steps" in err
    code, _, err = _cli(
        [*more, "--resume_with_more_steps", "--config.model.dropout_rate=0.1"], capsys
    )
    assert code == 2 and "model.dropout_rate (saved 0.2, given 0.1)" in err
    assert "train.num_steps" not in err.split(":", 3)[-1].split(";")[0]  # only the refused key
    fewer = [*DEMO, f"--workdir={demo_copy}", "--config.train.num_steps=10"]
    code, _, err = _cli(
        [*fewer, "--config.eval.every_steps=10", "--resume_with_more_steps"], capsys
    )
    assert code == 2 and "train.num_steps (saved 20, given 10)" in err
    assert _snapshot(demo_copy) == before

    code, out, err = _cli([*more, "--resume_with_more_steps"], capsys)
    assert code == 0, err
    assert "resuming with train.num_steps 20 -> 30" in err and "resumed at step 20" in err
    assert json.loads(out)["best_step"] in (10, 20, 30)
    saved = json.loads((demo_copy / "config.json").read_text())
    assert saved["train"]["num_steps"] == 30
    events = [json.loads(x) for x in (demo_copy / "metrics.jsonl").read_text().splitlines()]
    assert [e["step"] for e in events if e["event"] == "eval"] == [10, 20, 30]


def test_the_same_config_resumes(demo_copy, capsys):
    code, out, err = _cli([*DEMO, f"--workdir={demo_copy}", *STEPS], capsys)
    assert code == 0, err
    assert "resumed at step 20" in err
    assert json.loads(out)["best_step"] in (10, 20)


def _demo_config(**overrides):
    from configs import demo

    config = demo.get_config()
    for key, value in overrides.items():
        group, name = key.split(".")
        config[group][name] = value
    return config


def test_a_saved_config_of_an_older_version_is_migrated_before_comparing(tmp_path):
    from avloc_jax.engine import train

    saved = json.loads(_demo_config().to_json_best_effort())
    saved["config_version"] = 1
    del saved["model"]["head_norm"]  # version 1 had none; it migrates to 'none'
    (tmp_path / "config.json").write_text(json.dumps(saved))
    assert train.check_resume(_demo_config(), tmp_path) == []
    with pytest.raises(ConfigError, match=r"model\.head_norm \(saved 'none', given 'layernorm'\)"):
        train.check_resume(_demo_config(**{"model.head_norm": "layernorm"}), tmp_path)
    # version 0: the attention gate did not exist, so the saved run had none
    del saved["model"]["attention_gate"]
    saved["config_version"] = 0
    (tmp_path / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ConfigError, match=r"model\.attention_gate \(saved False, given True\)"):
        train.check_resume(_demo_config(), tmp_path)
    assert config_migration.read_saved(tmp_path / "config.json")["model"]["attention_gate"] is False


def test_an_unreadable_saved_config_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text('{"config_version": 99}')
    before = _snapshot(tmp_path)
    code, _, err = _cli([*DEMO, f"--workdir={tmp_path}", *STEPS], capsys)
    assert code == 2
    assert err.startswith(f"avloc train: error: {tmp_path / 'config.json'}: ")
    assert "newer than this version" in err
    assert _snapshot(tmp_path) == before


# ----------------------------------------------------------------------------- input errors


def test_a_missing_dataset_is_an_error_line_and_writes_nothing(tmp_path, capsys):
    argv = ["train", "--config=configs/activitynet12.py", "--config.data.data_dir=/nonexistent"]
    code, out, err = _cli([*argv, f"--workdir={tmp_path / 'new'}"], capsys)
    assert code == 2 and out == ""
    assert err.splitlines() == [
        "avloc train: error: data.data_dir: no dataset 'activitynet12' in /nonexistent; "
        "build it with `avloc build-data activitynet12 --data-dir /nonexistent ...`"
    ]
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    code, _, err = _cli([*argv, f"--workdir={tmp_path / 'empty'}"], capsys)
    assert code == 2 and err.startswith("avloc train: error: data.data_dir: ")
    assert list((tmp_path / "empty").iterdir()) == []


def test_evaluate_checks_the_workdir_and_the_dataset_before_writing(demo_copy, tmp_path, capsys):
    code, out, err = _cli(["evaluate", f"--workdir={tmp_path / 'nope'}"], capsys)
    assert code == 2 and out == ""
    assert err.startswith(f"avloc evaluate: error: {tmp_path / 'nope'}: no such directory")
    assert not (tmp_path / "nope").exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = _cli(["evaluate", f"--workdir={empty}"], capsys)
    assert code == 2 and err.startswith(f"avloc evaluate: error: {empty / 'config.json'}: ")
    code, _, err = _cli(["evaluate", f"--workdir={empty}", "--config=configs/demo.py"], capsys)
    assert code == 2 and err.startswith(f"avloc evaluate: error: {empty / 'checkpoints'}: ")
    assert list(empty.iterdir()) == []

    before = _snapshot(demo_copy)
    argv = ["evaluate", f"--workdir={demo_copy}", "--config=configs/activitynet12.py"]
    code, _, err = _cli([*argv, "--config.data.data_dir=/nonexistent"], capsys)
    assert code == 2 and err.startswith("avloc evaluate: error: data.data_dir: no dataset")
    code, _, err = _cli(["evaluate", f"--workdir={demo_copy}", "--split=bogus"], capsys)
    assert code == 2 and err.startswith("avloc evaluate: error: split 'bogus': not a split")
    assert _snapshot(demo_copy) == before
