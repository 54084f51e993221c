"""`avloc extract-features` at scale: inputs from a list file or a folder, unique ids,
and one bad video that does not stop the job (failures.json, exit 3, --fail-fast).

Short PyAV clips and the stand-in networks of media_helpers; the CLI runs in-process
with `pipeline.load_extractor` replaced by the stand-in."""

from __future__ import annotations

import json
import shutil

import media_helpers as mh
import numpy as np
import pytest

from avloc_jax.extraction import media, pipeline


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A folder of three good 1-s clips (a, b, c.mp4) and a text file."""
    folder = tmp_path_factory.mktemp("clips")
    for name in ("a", "b", "c"):
        mh.write_clip(folder / f"{name}.mp4", seconds=1.0, size=(32, 32))
    (folder / "notes.txt").write_text("not a video")
    return folder


@pytest.fixture(autouse=True)
def standin(monkeypatch):
    monkeypatch.setattr(pipeline, "load_extractor", lambda *a, **k: mh.standin_extractor())


run = mh.run_extract_features
states = mh.video_states


def manifest_ids(out) -> list[str]:
    return sorted(json.loads((out / "manifest.json").read_text())["videos"])


def test_list_file_with_ids_and_comments_and_a_folder(clips, tmp_path, capsys):
    listing = tmp_path / "videos.tsv"
    listing.write_text(f"# my videos\n\nfirst\t{clips / 'a.mp4'}\n  {clips / 'b.mp4'}\n# the end\n")
    out = tmp_path / "features"
    code, stdout, err = run(capsys, "--list", listing, "--out", out, "--weights", tmp_path)
    assert code == 0, err
    assert states(stdout) == {"first": "extracted", "b": "extracted"}
    assert manifest_ids(out) == ["b", "first"]
    assert (out / "visual" / "first.npy").is_file() and not (out / "failures.json").exists()
    assert "2 extracted, 0 cached, 0 failed ->" in err

    # A folder: its videos by extension (notes.txt is not one), sorted; a and b by stem.
    code, stdout, err = run(capsys, clips, "--out", out, "--weights", tmp_path, "--quiet")
    assert code == 0, err
    assert list(states(stdout).items()) == [
        ("a", "extracted"),
        ("b", "cached"),
        ("c", "extracted"),
    ]
    np.testing.assert_array_equal(
        np.load(out / "visual" / "a.npy"), np.load(out / "visual" / "first.npy")
    )


def test_bad_inputs_refused_up_front(clips, tmp_path, capsys):
    out = tmp_path / "features"
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(clips / "a.mp4", other / "a.mp4")
    # The same stem in two folders.
    code, _, err = run(capsys, clips / "a.mp4", other / "a.mp4", "--out", out, "--weights", ".")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("avloc extract-features: error:")
    assert f"{clips / 'a.mp4'} and {other / 'a.mp4'} would both be written as 'a'" in err
    # An explicit id that collides with another file's id (or stem).
    listing = tmp_path / "list.tsv"
    listing.write_text(f"x\t{clips / 'a.mp4'}\nx\t{clips / 'b.mp4'}\n")
    code, _, err = run(capsys, "--list", listing, "--out", out, "--weights", ".")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{clips / 'a.mp4'} and {clips / 'b.mp4'} would both be written as 'x'" in err
    listing.write_text(f"b\t{clips / 'a.mp4'}\n")
    code, _, err = run(capsys, clips / "b.mp4", "--list", listing, "--out", out, "--weights", ".")
    assert code == 2 and f"{clips / 'b.mp4'} and {clips / 'a.mp4'}" in err
    # A missing list, an empty folder, no input at all.
    code, _, err = run(capsys, "--list", tmp_path / "none.txt", "--out", out, "--weights", ".")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "none.txt: no such file" in err
    empty = tmp_path / "empty"
    empty.mkdir()
    code, _, err = run(capsys, empty, "--out", out, "--weights", ".")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{empty}: holds no video file" in err
    code, _, err = run(capsys, "--out", out, "--weights", ".")
    assert code == 2 and "no video given" in err
    assert not out.exists()


def test_a_bad_video_does_not_stop_the_job(clips, tmp_path, capsys):
    videos = tmp_path / "videos"
    shutil.copytree(clips, videos)
    corrupt = videos / "broken.mp4"
    corrupt.write_bytes(b"\x00" * 4096)
    mh.write_clip(videos / "silent.mp4", seconds=1.0, size=(32, 32), audio=False)
    mh.write_clip(videos / "short.mp4", seconds=0.4, size=(32, 32))
    out = tmp_path / "features"

    # --fail-fast: today's behaviour, the first bad video (by name: broken) ends the run.
    code, _, err = run(capsys, videos, "--out", out, "--weights", ".", "--fail-fast")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("avloc extract-features: error:") and "broken.mp4" in err
    assert not out.exists()

    code, stdout, err = run(capsys, videos, "--out", out, "--weights", ".", "--quiet")
    assert code == 3, err
    assert states(stdout) == {
        "a": "extracted",
        "b": "extracted",
        "c": "extracted",
        "broken": "failed",
        "short": "failed",
        "silent": "failed",
    }
    assert manifest_ids(out) == ["a", "b", "c"]
    failures = json.loads((out / "failures.json").read_text())["failures"]
    reasons = {f["id"]: f["reason"] for f in failures}
    assert {f["id"]: f["path"] for f in failures} == {
        "broken": str(corrupt),
        "short": str(videos / "short.mp4"),
        "silent": str(videos / "silent.mp4"),
    }
    assert "broken.mp4" in reasons["broken"] and "corrupt" in reasons["broken"]
    assert "has no audio track" in reasons["silent"]
    assert "expected at least one snippet" in reasons["short"]
    assert all("\n" not in r for r in reasons.values())
    assert "warning: broken failed, the others go on:" in err
    assert f"3 extracted, 0 cached, 3 failed (listed in {out / 'failures.json'}) ->" in err
    assert not list(out.glob("*.tmp*")) and not list(out.glob(".*"))

    # The broken video fixed, silent allowed: a rerun extracts them and clears them.
    mh.write_clip(corrupt, seconds=1.0, size=(32, 32))
    code, stdout, err = run(
        capsys, videos, "--out", out, "--weights", ".", "--quiet", "--allow-missing-audio"
    )
    assert code == 3, err
    assert states(stdout)["broken"] == "extracted" and states(stdout)["silent"] == "extracted"
    assert states(stdout)["a"] == "cached"
    failures = json.loads((out / "failures.json").read_text())["failures"]
    assert [f["id"] for f in failures] == ["short"]
    assert manifest_ids(out) == ["a", "b", "broken", "c", "silent"]

    # A video that was extracted and is now broken leaves the manifest.
    (videos / "short.mp4").unlink()
    corrupt.write_bytes(b"\x00" * 4096)
    code, stdout, err = run(
        capsys, videos, "--out", out, "--weights", ".", "--quiet", "--allow-missing-audio"
    )
    assert code == 3 and "1 failed" in err
    failures = json.loads((out / "failures.json").read_text())["failures"]
    assert [f["id"] for f in failures] == ["short", "broken"]  # short: not given this time
    assert manifest_ids(out) == ["a", "b", "c", "silent"]


def test_library_default_still_refuses_a_bad_video(clips, tmp_path):
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00" * 4096)
    with pytest.raises(media.MediaError, match="broken.mp4"):
        pipeline.extract_features(
            [clips / "a.mp4", corrupt], tmp_path / "out", mh.standin_extractor(), progress=False
        )
    assert not (tmp_path / "out").exists()
    notices: list[str] = []
    result = pipeline.extract_features(
        [clips / "a.mp4", corrupt],
        tmp_path / "out",
        mh.standin_extractor(),
        progress=False,
        fail_fast=False,
        ids=["first", None],
        notice=notices.append,
    )
    assert len(notices) == 1 and notices[0].startswith("warning: broken failed")
    assert [v.video_id for v in result.videos] == ["first"]
    assert [(f.video_id, f.path) for f in result.failures] == [("broken", corrupt)]
    assert result.failures_file == tmp_path / "out" / "failures.json"


def test_a_video_failing_while_decoding(clips, tmp_path, monkeypatch):
    """A failure in the decoding thread (after the probe) skips that video only."""
    decode_audio = media.decode_audio

    def failing(path, *args, **kwargs):
        if path.name == "b.mp4":
            raise media.MediaError(f"{path}: its audio cannot be decoded (test)")
        return decode_audio(path, *args, **kwargs)

    monkeypatch.setattr(media, "decode_audio", failing)
    videos = [clips / "a.mp4", clips / "b.mp4", clips / "c.mp4"]
    out = tmp_path / "out"
    with pytest.raises(media.MediaError, match="cannot be decoded"):
        pipeline.extract_features(videos, out, mh.standin_extractor(), progress=False)
    assert pipeline.read_manifest(out)["videos"].keys() == {"a"}  # a was done before
    result = pipeline.extract_features(
        videos, out, mh.standin_extractor(), progress=False, fail_fast=False, notice=print
    )
    assert [(v.video_id, v.cached) for v in result.videos] == [("a", True), ("c", False)]
    assert [f.reason for f in result.failures] == [
        f"{clips / 'b.mp4'}: its audio cannot be decoded (test)"
    ]
    assert sorted(pipeline.read_manifest(out)["videos"]) == ["a", "c"]
    assert [f["id"] for f in pipeline.read_failures(out)] == ["b"]
    # c's features are those of a run without the failure (nothing leaked from b).
    clean = pipeline.extract_features(
        [clips / "c.mp4"], tmp_path / "clean", mh.standin_extractor(), progress=False
    )
    np.testing.assert_array_equal(np.load(result.videos[1].visual), np.load(clean.videos[0].visual))
