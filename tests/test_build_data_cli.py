"""`avloc build-data`: builds without TensorFlow, refuses to replace a complete dataset
without --overwrite, and a failed build leaves nothing (and keeps an older build intact)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
from test_tfds_builders import write_ave, write_generic

from avloc_jax.cli import build_data
from avloc_jax.cli import main as cli
from avloc_jax.data import datasets

REPO = Path(__file__).resolve().parents[1]


def _leftovers(data_dir):
    return [p.name for p in Path(data_dir).iterdir() if p.name.startswith(".avloc-build")]


def test_build_refuse_overwrite_and_atomic_failure(tmp_path, capsys):
    write_ave(tmp_path / "ave", n=9)
    data_dir = tmp_path / "tfds"
    argv = [
        "build-data",
        "ave",
        "--data-dir",
        str(data_dir),
        "--manual-dir",
        str(tmp_path / "ave"),
        "--quiet",
    ]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "built ave/default" in out and "train: 3 videos" in out and "3 classes" in out
    info = data_dir / "ave" / "default" / "1.0.0" / "dataset_info.json"
    before = info.stat().st_mtime_ns

    # A complete dataset is not replaced without --overwrite.
    assert cli.main(argv) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert info.stat().st_mtime_ns == before

    # A failing rebuild (NaN in a feature) leaves the complete older build untouched.
    with h5py.File(tmp_path / "ave" / "visual_feature.h5", "r+") as f:
        f["avadataset"][2, 0, 0, 0, 0] = np.nan
    assert cli.main(argv + ["--overwrite"]) == 1
    err = capsys.readouterr().err
    assert "visual_feature.h5" in err and "row 2 (video yt002)" in err and "NaN/Inf" in err
    assert info.stat().st_mtime_ns == before and not _leftovers(data_dir)
    assert len(datasets.load_dataset("ave", data_dir).split("test")) == 3

    # --overwrite with good data replaces it.
    src = write_ave(tmp_path / "ave", n=9, seed=5)
    assert cli.main(argv + ["--overwrite"]) == 0
    test = datasets.load_dataset("ave", data_dir).split("test")
    np.testing.assert_array_equal(test[0]["audio"], src["audio"][src["orders"]["test"][0]])
    assert not _leftovers(data_dir)


def test_failed_first_build_leaves_no_dataset(tmp_path, capsys):
    write_ave(tmp_path / "ave", n=9)
    (tmp_path / "ave" / "test_order.h5").unlink()
    rc = cli.main(
        [
            "build-data",
            "ave",
            "--data-dir",
            str(tmp_path / "tfds"),
            "--manual-dir",
            str(tmp_path / "ave"),
        ]
    )
    assert rc == 1
    assert "test_order not found" in capsys.readouterr().err
    assert not (tmp_path / "tfds").exists()  # found before anything was written


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("avloc build-data: error: "), err
    return lines[0]


def test_missing_manual_dir_is_named_as_such(tmp_path, capsys):
    data_dir = tmp_path / "dd"
    rc = build_data.main(
        ["activitynet12", "--data-dir", str(data_dir), "--manual-dir", str(tmp_path / "nope")]
    )
    captured = capsys.readouterr()
    assert rc == 1 and captured.out == ""
    assert _one_error_line(captured.err) == (
        f"avloc build-data: error: --manual-dir {tmp_path / 'nope'} does not exist"
    )
    assert not data_dir.exists()


def test_manual_dir_without_the_files_names_the_missing_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    data_dir = tmp_path / "dd" / "nested"
    rc = build_data.main(
        ["activitynet12", "--data-dir", str(data_dir), "--manual-dir", str(tmp_path / "empty")]
    )
    captured = capsys.readouterr()
    assert rc == 1 and captured.out == ""
    line = _one_error_line(captured.err)
    assert f"annotations not found in {tmp_path / 'empty'}" in line
    assert "ActivityNet1.2-Annotations" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty"]  # no dd, no dd/nested


def test_failure_while_building_leaves_nothing_new_and_nothing_on_stdout(tmp_path, capsys):
    """A bad feature found mid-build (after the temporary folder was made): no TFDS
    banner on stdout, one error line, and the data dir (new here) is gone again; in a data
    dir that existed, its contents are as before."""
    write_ave(tmp_path / "ave", n=9)
    with h5py.File(tmp_path / "ave" / "visual_feature.h5", "r+") as f:
        f["avadataset"][2, 0, 0, 0, 0] = np.nan
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    for data_dir in (tmp_path / "new" / "dd", existing):
        argv = ["ave", "--data-dir", str(data_dir), "--manual-dir", str(tmp_path / "ave")]
        assert build_data.main(argv) == 1
        captured = capsys.readouterr()
        assert captured.out == ""  # no "Downloading and preparing dataset ..."
        assert "visual_feature.h5" in _one_error_line(captured.err)
    assert not (tmp_path / "new").exists()
    assert [p.name for p in existing.iterdir()] == ["keep.txt"]


def test_bad_options_and_paths_are_one_error_line(tmp_path, capsys):
    write_ave(tmp_path / "ave", n=6)
    data_dir = tmp_path / "dd"
    base = ["ave", "--data-dir", str(data_dir), "--manual-dir", str(tmp_path / "ave")]
    cases = [
        (["--path", "noequals"], 2, "--path expects NAME=PATH, got 'noequals'"),
        (["--path", "foo=bar"], 1, "ave: unknown inputs ['foo']"),
        (["--audio", str(tmp_path / "no.h5")], 1, f"ave: audio not found: {tmp_path / 'no.h5'}"),
        (["--heldout-fraction", "1.5"], 1, "--heldout-fraction must be in [0, 1), got 1.5"),
        (["--weak", "--name", "x"], 2, "apply to generic only"),
    ]
    for extra, code, message in cases:
        assert build_data.main(base + extra) == code, extra
        assert message in _one_error_line(capsys.readouterr().err), extra
    generic = ["generic", "--data-dir", str(data_dir), "--gt", str(tmp_path / "gt.json")]
    assert build_data.main(generic + ["--tiou", "0.5,x"]) == 2
    assert "--tiou expects" in _one_error_line(capsys.readouterr().err)
    assert build_data.main(generic) == 1
    assert f"gt not found: {tmp_path / 'gt.json'}" in _one_error_line(capsys.readouterr().err)
    (tmp_path / "file").write_text("")
    assert build_data.main(["ave", "--data-dir", str(tmp_path / "file")] + base[3:]) == 1
    assert "is not a folder" in _one_error_line(capsys.readouterr().err)
    assert not data_dir.exists()


def test_generic_flags_and_argument_errors(tmp_path, capsys, caplog):
    write_generic(tmp_path / "mine", subsets=("train", "test"))
    caplog.set_level("WARNING")
    rc = build_data.main(
        [
            "generic",
            "--data-dir",
            str(tmp_path / "tfds"),
            "--name",
            "mine",
            "--gt",
            str(tmp_path / "mine" / "gt.json"),
            "--visual",
            str(tmp_path / "mine" / "visual"),
            "--audio",
            str(tmp_path / "mine" / "audio"),
            "--train-split",
            "train",
            "--test-split",
            "test",
            "--tiou",
            "0.1,0.3,0.5",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    # TFDS's "Using custom data configuration" (a generic config is made at run time) is
    # not shown; nothing else from TFDS is either.
    assert not [r.getMessage() for r in caplog.records if r.name == "absl"]
    ds = datasets.load_dataset(
        "generic", tmp_path / "tfds", builder_config="mine", heldout_fraction=0.34
    )
    assert ds.metadata.tiou_thresholds == (0.1, 0.3, 0.5)
    # The derived split is called "train" too: the full stored one stays reachable.
    assert len(ds.split("train")) + len(ds.split("val")) == len(ds.split("train_full")) == 3
    assert build_data.main(["thumos14", "--data-dir", str(tmp_path), "--weak"]) == 2
    assert build_data.main(["ave", "--data-dir", str(tmp_path), "--name", "x"]) == 2


def test_cli_build_runs_without_tensorflow(tmp_path):
    """A real `avloc build-data` process, in an environment without TensorFlow."""
    write_ave(tmp_path / "ave", n=6)
    code = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('tensorflow') is None, 'TensorFlow is installed here'\n"
        "from avloc_jax.cli import main as cli\n"
        f"rc = cli.main(['build-data', 'ave', '--data-dir', {str(tmp_path / 'tfds')!r}, "
        f"'--manual-dir', {str(tmp_path / 'ave')!r}])\n"
        "from avloc_jax.data import datasets\n"
        f"d = datasets.load_dataset('ave', {str(tmp_path / 'tfds')!r})\n"
        "print('RESULT', rc, len(d.split('train')), d.split('train')[0]['visual'].shape, "
        "'tensorflow' in sys.modules)\n"
    )
    env = {**os.environ, "AVLOC_PROGRESS": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "RESULT 0 2 (10, 6) False" in proc.stdout
    assert "\r" not in proc.stderr  # no progress bar off a terminal
    json.loads((tmp_path / "tfds" / "ave" / "default" / "1.0.0" / "dataset_info.json").read_text())


def test_generic_from_extraction_leaves_out_the_failed_videos_and_names_them(tmp_path, capsys):
    """A folder that `avloc extract-features` wrote: the ground-truth videos that
    failures.json lists (and that have no features) are left out, in one note line;
    unmerged manifest parts and other missing videos are refused."""
    from avloc_jax.extraction import records, shards

    features = tmp_path / "features"
    write_generic(features)  # clip0..clip5, training / validation alternating
    (features / "manifest.json").write_text(json.dumps({"format": "avloc-features", "videos": {}}))
    for name in ("visual", "audio"):
        (features / name / "clip2.npy").unlink()
    records.write_failures(
        features, [{"id": "clip2", "path": "videos/clip2.mp4", "reason": "corrupt (test)"}]
    )
    argv = ["generic", "--data-dir", str(tmp_path / "tfds"), "--manual-dir", str(features)]
    argv.append("--quiet")
    assert build_data.main(argv) == 0
    captured = capsys.readouterr()
    assert captured.err == (
        f"avloc build-data: note: 1 video of {features / 'gt.json'} left out, its extraction "
        f"failed ({features / 'failures.json'}): clip2\n"
    )
    assert "training: 2 videos" in captured.out and "validation: 3 videos" in captured.out

    # A video without features that did not fail is still refused (unless --skip-missing).
    for name in ("visual", "audio"):
        (features / name / "clip4.npy").unlink()
    argv[2] = str(tmp_path / "tfds2")
    assert build_data.main(argv) == 1
    assert _one_error_line(capsys.readouterr().err).endswith(
        f"{features}: 1 video of {features / 'gt.json'} has no features and did not fail "
        "either (clip4): extract it first, or pass --skip-missing"
    )
    assert not (tmp_path / "tfds2").exists()
    assert build_data.main([*argv, "--skip-missing"]) == 0
    assert "training: 1 video" in capsys.readouterr().out

    # A shard that ran after the merge: its part is newer than manifest.json.
    part = features / shards.Shard(1, 2).part_name
    part.write_text("{}")
    stamp = (features / "manifest.json").stat().st_mtime_ns + 10**9
    os.utime(part, ns=(stamp, stamp))
    argv[2] = str(tmp_path / "tfds3")
    assert build_data.main(argv) == 1
    assert _one_error_line(capsys.readouterr().err).endswith(
        f"{features} holds manifest parts newer than its manifest.json "
        f"(manifest.part-00001-of-00002.json): merge them first with avloc extract-features "
        f"--merge {features}"
    )
