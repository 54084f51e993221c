"""A workdir written before the redesign (commit 465912f: tests/golden/workdir_465912f,
its README says how it was made) is still read by today's code: `avloc evaluate` gives
the scores it recorded then, and training resumes from its checkpoint."""

import json
import shutil
from pathlib import Path

import ml_collections
import pytest

from avloc_jax import schema
from avloc_jax.cli import main as cli_main
from avloc_jax.common.workdir import Workdir
from avloc_jax.engine import train

OLD = Path(__file__).parent / "golden" / "workdir_465912f"


@pytest.fixture
def old_workdir(tmp_path):
    workdir = tmp_path / "old"
    shutil.copytree(OLD, workdir, ignore=shutil.ignore_patterns("README.md"))
    return workdir


def test_evaluate_scores_an_old_checkpoint_as_it_was_scored_then(old_workdir, capsys):
    recorded = json.loads((OLD / "results" / "validation_metrics.json").read_text())
    (old_workdir / "results" / "validation_metrics.json").unlink()
    argv = ["evaluate", f"--workdir={old_workdir}", "--split=validation", "--checkpoint=best"]
    assert cli_main.main(argv) == 0
    assert "WARNING" not in capsys.readouterr().err  # nor orbax's read-only notes
    scored = json.loads((old_workdir / "results" / "validation_metrics.json").read_text())
    assert scored["step"] == recorded["step"] == 8
    assert scored["metrics"] == recorded["metrics"]  # the same numbers, to the last bit


def test_training_resumes_from_an_old_checkpoint(old_workdir):
    saved = Workdir(old_workdir).read_config(schema.validate)  # migrated and validated
    config = ml_collections.ConfigDict(saved)
    config.train.num_steps = 10
    outcome = train.train_and_evaluate(config, old_workdir, resume_with_more_steps=True)
    assert (outcome.start_step, outcome.step) == (8, 10)
    assert 10 in Workdir(old_workdir).checkpoint_steps()


def test_a_python_warning_is_one_line_of_the_command(old_workdir, capsys):
    """The demo's test split lacks a class the model predicts: detection_eval warns, and
    `avloc evaluate` shows it as one WARNING line, not a file name and a source line."""
    argv = ["evaluate", f"--workdir={old_workdir}", "--split=test", "--checkpoint=best"]
    assert cli_main.main(argv) == 0
    assert capsys.readouterr().err.splitlines() == [
        "WARNING avloc_jax.evaluation.detection_eval: ignored 130 predictions whose label is "
        "not a ground-truth class (1 label: distinct_1)"
    ]
