"""`avloc plot`: per-video figures, the attention map and training curves, as PNGs."""

import types

import numpy as np
import pytest
from PIL import Image

from avloc_jax.cli import main as cli
from avloc_jax.serving import figures as serving_figures
from avloc_jax.viz import figures, plotting


@pytest.fixture(scope="module")
def workdir(trained_demo):
    """The session's short demo training run."""
    return trained_demo[0]


def run(capsys, *argv):
    code = cli.main(["plot", *map(str, argv)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_png(path, figsize):
    assert path.exists() and path.stat().st_size > 10_000  # a drawn figure, not an empty canvas
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size == plotting.figure_pixels(figsize)
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10  # not a blank image


def test_split_figures_and_attention_map(workdir, tmp_path, capsys):
    code, stdout, stderr = run(
        capsys, "--workdir", workdir, "--split", "test", "--videos", 3, "--out", tmp_path
    )
    assert code == 0, stderr
    written = [line for line in stdout.splitlines() if line]
    videos = [p for p in written if not p.endswith("_attention.png")]
    attention = [p for p in written if p.endswith("_attention.png")]
    assert len(videos) == 3 and len(attention) == 1
    assert attention[0].replace("_attention", "") == videos[0]  # the first video's map
    for path in videos:
        assert_png(tmp_path / path.rsplit("/", 1)[-1], plotting.VIDEO_FIGSIZE)
    assert_png(tmp_path / attention[0].rsplit("/", 1)[-1], plotting.ATTENTION_FIGSIZE)
    assert all(
        name.startswith("test_demo_test_") for name in (p.rsplit("/", 1)[-1] for p in written)
    )


def test_training_curves(workdir, tmp_path, capsys):
    code, stdout, stderr = run(capsys, "--workdir", workdir, "--curves", "--out", tmp_path)
    assert code == 0, stderr
    assert stdout.strip().endswith("curves.png")
    assert_png(tmp_path / "curves.png", plotting.CURVES_FIGSIZE)


def test_predict_plot_option(workdir, trained_demo, tmp_path, capsys):
    dataset = trained_demo[1]
    record = dataset.split("validation")[0]
    np.save(tmp_path / "clip.npy", record["visual"])
    np.save(tmp_path / "clip_audio.npy", record["audio"])
    visual, audio, figs = tmp_path / "clip.npy", tmp_path / "clip_audio.npy", tmp_path / "figs"
    argv = ["--workdir", workdir, "--visual", visual, "--audio", audio, "--plot", figs]
    code = cli.main(["predict", *map(str, argv)])
    assert code == 0, capsys.readouterr().err
    assert_png(tmp_path / "figs" / "clip.png", plotting.VIDEO_FIGSIZE)
    assert_png(tmp_path / "figs" / "clip_attention.png", plotting.ATTENTION_FIGSIZE)


def test_models_without_cross_attention_skip_the_map_with_a_note(tmp_path, capsys):
    T, C = 12, 3
    rng = np.random.default_rng(0)
    reliability = rng.uniform(size=T)
    posterior = np.concatenate(
        [reliability[:, None] * rng.dirichlet(np.ones(C), size=T), 1 - reliability[:, None]], 1
    )
    loaded = types.SimpleNamespace(
        has_cross_attention=False,
        config=types.SimpleNamespace(
            model=types.SimpleNamespace(fusion="concat"),
            eval=types.SimpleNamespace(reliability_threshold=0.5),
        ),
        metadata=types.SimpleNamespace(class_names=("a", "b", "c")),
    )
    item = figures.VideoItem(
        video_id="x/y z",  # made safe for a file name
        duration=6.0,
        outputs={
            "posterior": posterior,
            "reliability": reliability,
            "video_scores": np.array([0.2, 0.5, 0.3]),
        },
        detections=[],  # nothing detected: still a figure
        ground_truth=None,
    )
    paths = serving_figures.write_figures(loaded, [item], tmp_path)
    assert [p.name for p in paths] == ["x_y_z.png"]
    assert "no attention map" in capsys.readouterr().err
    assert_png(paths[0], plotting.VIDEO_FIGSIZE)


def test_option_errors(workdir, tmp_path, capsys):
    assert (
        run(capsys, "--workdir", workdir, "--out", tmp_path)[0] == 2
    )  # neither --split nor --curves
    assert (
        run(capsys, "--workdir", workdir, "--split", "test", "--curves", "--out", tmp_path)[0] == 2
    )
    assert (
        run(capsys, "--workdir", workdir, "--split", "test", "--videos", 0, "--out", tmp_path)[0]
        == 2
    )
    code, _, stderr = run(capsys, "--workdir", tmp_path, "--curves", "--out", tmp_path)
    assert code == 1 and "metrics.jsonl" in stderr
    code, _, stderr = run(capsys, "--workdir", workdir, "--split", "nosuch", "--out", tmp_path)
    assert code == 2 and "nosuch" in stderr and "Traceback" not in stderr
    assert list(tmp_path.glob("*.png")) == []


def test_bad_out_and_failures_leave_nothing_new(workdir, tmp_path, capsys, monkeypatch):
    """An --out that is not a writable folder is one error line before any work; a
    failure while drawing leaves no figure and no folder made for --out."""
    (tmp_path / "file").write_text("")
    for argv in (["--split", "test"], ["--curves"]):
        code, stdout, stderr = run(capsys, "--workdir", workdir, *argv, "--out", tmp_path / "file")
        assert code == 2 and stdout == ""
        assert stderr.strip() == (
            f"avloc plot: error: --out: {tmp_path / 'file'} is not a folder; expected a folder "
            "to write into"
        )

    def failing_plot(path, **kwargs):
        if "_00001" in str(path):  # the second video: the first figure is drawn already
            raise OSError(28, "No space left on device", str(path))
        return original(path, **kwargs)

    original = plotting.plot_video
    monkeypatch.setattr(plotting, "plot_video", failing_plot)
    out = tmp_path / "new" / "figs"
    code, stdout, stderr = run(capsys, "--workdir", workdir, "--split", "test", "--out", out)
    lines = stderr.strip().splitlines()
    assert code == 1 and stdout == ""
    assert lines[-1].startswith("avloc plot: error: ") and "No space left" in lines[-1]
    assert sum(line.startswith("avloc plot: error:") for line in lines) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "metrics.jsonl").write_text('{"event": "train"}\nnot json\n')
    code, _, stderr = run(capsys, "--workdir", bad, "--curves", "--out", tmp_path / "c")
    assert code == 1 and stderr.startswith(f"avloc plot: error: {bad / 'metrics.jsonl'}: expected")
    assert len(stderr.strip().splitlines()) == 1 and not (tmp_path / "c").exists()


def test_video_figure_spans_exactly_the_video_and_titles_its_duration():
    """The time axis is [0, duration] (no room past the end), the title shows the real
    duration, and with a snippet grid (31 x 0.64 s = 19.84 s of a 20-s video) the curves
    sit on that grid while the title still says 20.0 s."""
    T, C = 31, 3
    rng = np.random.default_rng(0)
    posterior = rng.dirichlet(np.ones(C + 1), size=T)
    kwargs = dict(
        video_id="clip",
        duration=20.0,
        posterior=posterior,
        reliability=rng.uniform(size=T),
        video_scores=rng.uniform(size=C),
        class_names=["a", "b", "c"],
        detections=[(0, 0.9, 15.0, 20.0), (1, 0.4, 2.0, 5.0)],  # one ends at the video's end
        ground_truth=[(0, 14.0, 19.5)],
    )
    for snippet_seconds in (None, 0.64):
        figure = plotting.video_figure(**kwargs, snippet_seconds=snippet_seconds)
        assert "(20.0 s, 31 snippets)" in figure.texts[0].get_text()
        for ax in figure.axes[:3]:
            assert ax.get_xlim() == (0.0, 20.0)
        curve = figure.axes[0].lines[0].get_xdata()
        step = snippet_seconds or 20.0 / T
        np.testing.assert_allclose(curve, (np.arange(T) + 0.5) * step)
        labels = [t for t in figure.axes[2].texts if t.get_text().startswith("a 0.90")]
        assert labels and labels[0].get_position()[0] <= 20.0  # inside the axis
