"""Progress bars (quiet off a terminal) and the run's metric writers (clu interface)."""

import io
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from avloc_jax.common import progress
from avloc_jax.engine import metric_logging, writers

REPO = Path(__file__).resolve().parents[1]


class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


@pytest.fixture(autouse=True)
def no_override(monkeypatch):
    monkeypatch.delenv(progress.ENV_VAR, raising=False)


def _run_bar(stream, **kwargs):
    bar = progress.ProgressBar(total=10, initial=2, desc="train", stream=stream, **kwargs)
    for _ in range(4):
        bar.update(2, loss=np.float32(0.123456), val=float("nan"))
    bar.set_postfix(val=0.5)
    bar.write("a message")
    bar.close()
    bar.close()  # idempotent
    return bar


def test_quiet_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    bar = _run_bar(stream)
    assert not bar.enabled
    assert stream.getvalue() == ""


def test_draws_on_a_terminal_with_rate_loss_and_eta():
    stream = FakeTerminal()
    bar = _run_bar(stream)
    assert bar.enabled
    text = stream.getvalue()
    assert "train" in text and "10/10" in text
    assert "step/s" in text  # tqdm's rate, in the bar's unit
    assert "loss=0.1235" in text and "val=0.5" in text  # 4 significant digits; values merge
    assert "<00:00" in text  # the ETA
    assert "a message" in text


def test_environment_override(monkeypatch):
    monkeypatch.setenv(progress.ENV_VAR, "0")
    assert not progress.ProgressBar(5, stream=FakeTerminal()).enabled
    monkeypatch.setenv(progress.ENV_VAR, "1")
    stream = io.StringIO()
    _run_bar(stream)
    assert "10/10" in stream.getvalue()


def test_explicit_enabled_false_wins_on_a_terminal():
    stream = FakeTerminal()
    _run_bar(stream, enabled=False)
    assert stream.getvalue() == ""


def test_log_lines_go_above_the_bar_and_stderr_is_restored(monkeypatch, capsys):
    monkeypatch.setenv(progress.ENV_VAR, "1")
    original = sys.stderr
    bar = progress.ProgressBar(3, desc="x")  # draws on sys.stderr
    assert sys.stderr is not original
    print("a log line", file=sys.stderr)
    sys.stderr.write("partial")
    bar.update(3)
    bar.close()
    assert sys.stderr is original
    err = capsys.readouterr().err
    assert "a log line\n" in err and "partial" in err and "3/3" in err


def test_quiet_bar_leaves_stderr_alone():
    original = sys.stderr
    with progress.ProgressBar(3):
        assert sys.stderr is original


def test_closed_stream_counts_as_not_a_terminal():
    stream = io.StringIO()
    stream.close()
    assert not progress.progress_enabled(stream)


def test_track_yields_everything_quietly(capsys):
    assert list(progress.track(range(7), desc="build")) == list(range(7))
    assert list(progress.track(iter("abc"))) == ["a", "b", "c"]  # unknown length
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_subprocess_with_pipes_prints_nothing():
    """stdout and stderr are pipes (as under a scheduler or in CI): not a byte of output."""
    code = textwrap.dedent(
        """
        from avloc_jax.common.progress import ProgressBar, track
        bar = ProgressBar(total=100, initial=0, desc="train")
        for i in range(100):
            bar.update(1, loss=1.0 / (i + 1))
        bar.close()
        for _ in track(range(50), desc="build"):
            pass
        """
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


# ----------------------------------------------------------------------------- TensorBoard


def test_scalar_tags_follow_the_naming_scheme():
    train = {"event": "train", "step": 4, "time": 1.0, "loss/total": 1.5,
             "loss/mil": np.float32(0.5), "learning_rate": 1e-3, "steps_per_sec": 3.0,
             "videos_per_sec": 48.0, "grad_norm": "nan", "train_compilations": 1,
             "gate/audio_0": 0.01}  # fmt: skip
    tags = writers.scalar_tags("train", train)
    assert set(tags) == {"loss/total", "loss/mil", "learning_rate", "throughput/steps_per_sec",
                         "gate/audio_0",
                         "throughput/videos_per_sec", "train/grad_norm",
                         "train/train_compilations"}  # fmt: skip
    assert math.isnan(tags["train/grad_norm"])
    evaluation = {
        "event": "eval",
        "step": 6,
        "split": "validation",
        "is_best": True,
        "average_mAP": 0.25,
        "note": "x",
    }
    assert writers.scalar_tags("eval", evaluation) == {
        "validation/is_best": 1.0,
        "validation/average_mAP": 0.25,
    }
    final = {"split": "test", "accuracy": 0.7}
    assert writers.scalar_tags("final", final) == {"final/test/accuracy": 0.7}
    assert writers.scalar_tags("preempted", {"step": 3}) == {}


def test_run_writer_writes_metrics_jsonl_and_readable_event_files(tmp_path):
    writer = writers.create_writer(tmp_path, enabled=True)
    assert isinstance(writer, writers.metric_writers.MultiWriter)
    for step in (4, 8):
        values = {"loss/total": np.float32(2.0 / step), "learning_rate": 1e-3 * step}
        writer.write_scalars(step, {"event": "train", **values, "steps_per_sec": 10.0})
    writer.write_scalars(8, {"event": "eval", "split": "validation", "average_mAP": 0.3,
                             "is_best": True, "grad": float("nan")})  # fmt: skip
    writer.write_scalars(8, {"event": "final", "split": "test", "average_mAP": 0.2})
    writer.write_scalars(9, {"event": "preempted"})
    writer.close()
    writer.close()  # closing twice is harmless

    # metrics.jsonl: today's format, one object per event in the order written
    lines = metric_logging.read_metrics(tmp_path)
    assert [x["event"] for x in lines] == ["train", "train", "eval", "final", "preempted"]
    assert list(lines[0])[:3] == ["event", "step", "time"] and lines[0]["step"] == 4
    assert lines[0]["loss/total"] == pytest.approx(0.5) and type(lines[0]["loss/total"]) is float
    assert lines[2]["split"] == "validation" and lines[2]["is_best"] is True
    assert lines[2]["grad"] == "nan"  # non-finite floats as strings, as before
    assert lines[4] == {"event": "preempted", "step": 9, "time": lines[4]["time"]}

    scalars = writers.read_scalars(tmp_path / "tensorboard")
    assert [s for s, _ in scalars["loss/total"]] == [4, 8]
    np.testing.assert_allclose([v for _, v in scalars["loss/total"]], [0.5, 0.25], rtol=1e-6)
    np.testing.assert_allclose([v for _, v in scalars["learning_rate"]], [4e-3, 8e-3], rtol=1e-6)
    assert scalars["throughput/steps_per_sec"][0] == (4, 10.0)
    assert scalars["validation/average_mAP"][0][0] == 8
    assert scalars["validation/is_best"] == [(8, 1.0)]
    assert scalars["final/test/average_mAP"][0][0] == 8
    assert "time" not in scalars and "step" not in scalars


def test_other_processes_write_nothing(tmp_path):
    writer = writers.create_writer(tmp_path, enabled=False)
    writer.write_scalars(1, {"event": "train", "loss/total": 1.0})
    writer.close()
    assert list(tmp_path.iterdir()) == []


def test_a_record_without_event_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs an 'event'"):
        writers.JsonLinesWriter(tmp_path / "metrics.jsonl").write_scalars(1, {"loss": 1.0})


def test_clu_loads_without_tensorflow():
    """clu's writers and periodic actions import in a process without TensorFlow."""
    code = (
        "import sys; from avloc_jax.engine import writers; "
        "assert 'tensorflow' not in sys.modules; "
        "print(writers.periodic_actions.ReportProgress.__name__)"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ReportProgress"
