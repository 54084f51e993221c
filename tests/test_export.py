"""`avloc export`: self-contained, params-only, atomically written inference bundles."""

import json
import shutil

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from avloc_jax.cli import main as cli
from avloc_jax.data import loading, metadata_file
from avloc_jax.serving import inference


@pytest.fixture(scope="module")
def trained(trained_demo, tmp_path_factory):
    """(workdir, dataset, features folder) of one short demo run shared by the module."""
    workdir, dataset, _ = trained_demo
    root = tmp_path_factory.mktemp("export")
    record = dataset.split("test")[1]
    np.save(root / "v.npy", record["visual"])
    np.save(root / "a.npy", record["audio"])
    return workdir, dataset, root


def run(capsys, *argv):
    code = cli.main([*map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_bundle_layout_is_params_only_from_the_best_checkpoint(trained, tmp_path, capsys):
    workdir, dataset, _ = trained
    code, stdout, stderr = run(capsys, "export", "--workdir", workdir, "--out", tmp_path / "bundle")
    assert code == 0, stderr
    bundle = tmp_path / "bundle"
    assert stdout.strip() == str(bundle)
    assert sorted(p.name for p in bundle.iterdir()) == [
        "bundle.json",
        "config.json",
        "dataset_metadata.json",
        "params",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bundle"
    ]  # no temporary directory left behind

    info = json.loads((bundle / "bundle.json").read_text())
    best_step = json.loads((workdir / "results" / "validation_metrics.json").read_text())["step"]
    assert (
        info["format"] == inference.BUNDLE_FORMAT
        and info["checkpoint"] == "best"
        and info["step"] == best_step
    )

    meta = json.loads((bundle / "dataset_metadata.json").read_text())
    assert meta["class_names"] == list(dataset.metadata.class_names)
    assert (meta["visual_dim"], meta["audio_dim"]) == (
        dataset.metadata.visual_dim,
        dataset.metadata.audio_dim,
    )
    assert meta["seconds_per_snippet"] == 1.0

    # parameters only: the checkpoint's tree is the model's parameter tree, no optimizer state
    checkpointer = ocp.StandardCheckpointer()
    tree = checkpointer.metadata((bundle / "params").absolute()).item_metadata
    checkpointer.close()
    assert set(tree) == {"audio_embedding", "visual_embedding", "fusion", "head"}


def test_round_trip_gives_identical_outputs(trained, tmp_path, capsys):
    workdir, _, features = trained
    bundle = inference.write_bundle(inference.load_workdir(workdir), tmp_path / "bundle")
    from_workdir, from_bundle = inference.load_workdir(workdir), inference.load_bundle(bundle)
    assert from_workdir.step == from_bundle.step
    for a, b in zip(
        jax.tree_util.tree_leaves(from_workdir.params),
        jax.tree_util.tree_leaves(from_bundle.params),
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))

    files = ("--visual", features / "v.npy", "--audio", features / "a.npy")
    outputs = {}
    for source in (("--workdir", workdir), ("--bundle", bundle)):
        code, files_json, stderr = run(capsys, "predict", *source, *files)
        assert code == 0, stderr
        code, split_json, stderr = run(capsys, "predict", *source, "--split", "val")
        assert code == 0, stderr
        outputs[source[0]] = (json.loads(files_json), json.loads(split_json))
    assert outputs["--workdir"] == outputs["--bundle"]


def test_bundle_is_self_contained(trained, tmp_path, monkeypatch, capsys):
    """A bundle needs neither the workdir nor the dataset."""
    workdir, _, features = trained
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    bundle = tmp_path / "bundle"
    assert run(capsys, "export", "--workdir", copy, "--out", bundle)[0] == 0
    shutil.rmtree(copy)

    def no_dataset(config):
        raise AssertionError("a bundle must not need the dataset")

    monkeypatch.setattr(loading, "load_dataset", no_dataset)
    code, stdout, stderr = run(
        capsys,
        "predict",
        "--bundle",
        bundle,
        "--visual",
        features / "v.npy",
        "--audio",
        features / "a.npy",
    )
    assert code == 0, stderr
    assert json.loads(stdout)["results"]["v"]


def test_existing_bundle_needs_force_and_is_replaced_whole(trained, tmp_path, capsys):
    workdir, _, _ = trained
    bundle = tmp_path / "bundle"
    assert run(capsys, "export", "--workdir", workdir, "--out", bundle)[0] == 0
    marker = bundle / "old_file"
    marker.write_text("x")
    code, _, stderr = run(capsys, "export", "--workdir", workdir, "--out", bundle)
    assert code == 1 and "--force" in stderr
    assert marker.exists()  # untouched
    assert run(capsys, "export", "--workdir", workdir, "--out", bundle, "--force")[0] == 0
    assert not marker.exists() and (bundle / "bundle.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]


def test_failed_export_leaves_nothing(trained, tmp_path, monkeypatch, capsys):
    workdir, _, _ = trained
    loaded = inference.load_workdir(workdir)

    def broken_save(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(ocp.StandardCheckpointer, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        inference.write_bundle(loaded, tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_export_errors(tmp_path, capsys):
    code, _, stderr = run(
        capsys, "export", "--workdir", tmp_path / "absent", "--out", tmp_path / "b"
    )
    assert code == 1 and "does not exist" in stderr and "Traceback" not in stderr
    (tmp_path / "w").mkdir()
    code, _, stderr = run(capsys, "export", "--workdir", tmp_path / "w", "--out", tmp_path / "b")
    assert code == 1 and "config.json" in stderr
    assert not (tmp_path / "b").exists()


def test_workdir_metadata_from_its_file_or_derived_from_the_config(
    trained, trained_demo, tmp_path, monkeypatch
):
    workdir, dataset, _ = trained
    copy = tmp_path / "workdir"
    shutil.copytree(workdir, copy)
    (copy / inference.METADATA_FILE).unlink(missing_ok=True)
    derived = inference.load_workdir(copy)  # no metadata file: the demo data are regenerated
    assert derived.metadata == dataset.metadata and derived.seconds_per_snippet == 1.0

    # what `avloc train` writes
    config = trained_demo[2]
    metadata_file.write_dataset_metadata(copy, dataset, loading.declared_snippet_seconds(config))

    def no_dataset(config):
        raise AssertionError("the metadata file should be enough")

    monkeypatch.setattr(loading, "load_dataset", no_dataset)
    stored = inference.load_workdir(copy)
    assert stored.metadata == dataset.metadata and stored.seconds_per_snippet == 1.0
    # without a config to ask, the snippet length is estimated from training durations / T
    assert metadata_file.seconds_per_snippet(dataset) == pytest.approx(1.0)


def test_unwritable_out_and_bad_workdir_are_one_error_line(trained, tmp_path, capsys):
    """--out is checked before loading; a workdir that cannot be loaded or an export that
    fails leaves nothing new, not even the folders made for the bundle."""
    workdir, _, _ = trained
    (tmp_path / "file").write_text("")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("[1, 2")
    cases = [
        (workdir, tmp_path / "file", 2, f"--out: {tmp_path / 'file'} is not a folder"),
        (workdir, tmp_path / "file" / "b", 2, f"{tmp_path / 'file'} is not a folder"),
        (bad, tmp_path / "new" / "b", 1, f"cannot load {bad}: {bad / 'config.json'}"),
    ]
    for source, out, status, message in cases:
        code, stdout, stderr = run(capsys, "export", "--workdir", source, "--out", out)
        lines = stderr.strip().splitlines()
        assert code == status and stdout == "", out
        assert len(lines) == 1 and lines[0].startswith("avloc export: error: "), stderr
        assert message in lines[0], stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad", "file"]


def test_failed_export_removes_the_folders_it_made(trained, tmp_path, monkeypatch, capsys):
    workdir, _, _ = trained

    def broken_save(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ocp.StandardCheckpointer, "save", broken_save)
    code, _, stderr = run(capsys, "export", "--workdir", workdir, "--out", tmp_path / "a" / "b")
    assert code == 1
    assert stderr.strip() == (
        f"avloc export: error: cannot write {tmp_path / 'a' / 'b'}: No space left on device"
    )
    assert list(tmp_path.iterdir()) == []
