"""`avloc export-gt` and `avloc make-benchmark` on bad inputs: exit != 0, one stderr line
``avloc <cmd>: error: ...`` naming the path or option, and nothing new where the output
would have gone. (build-data, eval-detections, export, predict and plot: in their own
test files.)"""

from pathlib import Path

import pytest
from test_tfds_builders import write_wtalc_dataset

from avloc_jax.cli import main as cli

REPO = Path(__file__).resolve().parents[1]
SHARED_ANET = REPO.parent / "shared" / "data" / "activitynet12"
needs_anet = pytest.mark.skipif(
    not (SHARED_ANET / "subset.npy").exists(),
    reason=f"needs the real ActivityNet1.2 annotation files in {SHARED_ANET}",
)


def run(capsys, *argv):
    code = cli.main([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(stderr, program):
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{program}: error: "), stderr
    return lines[0]


def test_export_gt_errors_leave_nothing(tmp_path, capsys):
    annotations = write_wtalc_dataset(tmp_path / "anet")["annotations"]
    (tmp_path / "file").write_text("")
    out = tmp_path / "new" / "gt.json"
    base = ["export-gt", "--layout", "activitynet12"]
    cases = [
        ([*base, "--annotations", tmp_path / "nope", "--out", out], 1,
         f"W-TALC annotation folder not found: {tmp_path / 'nope'}"),
        ([*base, "--annotations", annotations, "--out", out, "--subset", "nosuch"], 1,
         "no video in subset 'nosuch'"),
        ([*base, "--annotations", annotations, "--out", tmp_path], 2,
         f"--out: {tmp_path} is a folder; expected a file name"),
        ([*base, "--annotations", annotations, "--out", tmp_path / "file" / "gt.json"], 2,
         f"--out: {tmp_path / 'file'} is not a folder"),
    ]  # fmt: skip
    for argv, status, message in cases:
        code, stdout, stderr = run(capsys, *argv)
        assert code == status and stdout == "", argv
        assert message in error_line(stderr, "avloc export-gt"), argv
    (annotations / "segments.npy").unlink()
    code, _, stderr = run(capsys, *base, "--annotations", annotations, "--out", out)
    assert code == 1 and "segments.npy" in error_line(stderr, "avloc export-gt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["anet", "file"]
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_export_gt_writes_the_file(tmp_path, capsys):
    annotations = write_wtalc_dataset(tmp_path / "anet")["annotations"]
    out = tmp_path / "a" / "b" / "gt.json"
    code, stdout, _ = run(
        capsys, "export-gt", "--layout", "activitynet12", "--annotations", annotations, "--out", out
    )
    assert code == 0 and f"wrote {out}" in stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["gt.json"]


def test_make_benchmark_option_errors_write_nothing(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    out = tmp_path / "new" / "bench"
    cases = [
        (["ave", "--num-classes", "3"], 2, "--num-classes does not apply to ave"),
        (["ave", "--pair-fraction", "2"], 2, "--pair-fraction must be in [0, 1], got 2.0"),
        (["ave", "--pair-fraction", "0.6", "--silent-fraction", "0.6"], 2,
         "--pair-fraction + --silent-fraction must be at most 1"),
        (["ave", "--visual-dim", "0"], 2, "--visual-dim must be positive, got 0"),
        (["activitynet12", "--noise-std", "-1"], 2, "--noise-std must be >= 0, got -1.0"),
        (["activitynet12", "--annotations", tmp_path / "nope"], 1,
         f"W-TALC annotation folder not found: {tmp_path / 'nope'}"),
    ]  # fmt: skip
    for argv, status, message in cases:
        code, stdout, stderr = run(capsys, "make-benchmark", *argv, "--out", out)
        assert code == status and stdout == "", argv
        assert message in error_line(stderr, "avloc make-benchmark"), argv
    code, _, stderr = run(capsys, "make-benchmark", "ave", "--out", tmp_path / "file" / "x")
    assert code == 2
    assert f"--out: {tmp_path / 'file'} is not a folder" in error_line(
        stderr, "avloc make-benchmark"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@needs_anet
def test_make_benchmark_existing_out_is_one_error_line(tmp_path, capsys):
    out = tmp_path / "bench"
    out.mkdir()
    (out / "mine.txt").write_text("x")
    argv = ["make-benchmark", "activitynet12", "--out", out, "--annotations", SHARED_ANET]
    code, stdout, stderr = run(capsys, *argv, "--num-train", "3", "--num-test", "2")
    assert code == 1 and stdout == ""
    assert error_line(stderr, "avloc make-benchmark") == (
        f"avloc make-benchmark: error: {out} exists; pass --overwrite to replace it"
    )
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
