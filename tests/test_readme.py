"""README.md and docs/*.md run as written (issue 21): a README that lies turns CI red.

How the blocks are found: markdown-it-py, the CommonMark parser (already installed with
the test extra's tools), reads every fenced block with its info string and line. It was
picked over pytest-examples, mktestdocs and pytest-codeblocks because those run Python
blocks one by one (pytest-codeblocks also shell blocks, but each as its own test item,
which pytest-xdist would spread over workers out of order); the walkthroughs here are
shell sessions whose commands depend on the ones before, so they must run in order, in
one temporary folder, as one test.

The rules, each a test below:

* Every fenced block says what it is: ```bash or ```python (code) or ```text (output,
  layouts, diagrams: never run). A bare ``` fails, so a new block cannot slip in
  unclassified.
* Every code block runs, or is listed in `NOT_RUN` with the reason. A `NOT_RUN` entry
  that matches no block fails too (it would hide nothing but rot).
* Runnable blocks run in file order, each with `bash -euo pipefail` (Python blocks with
  this interpreter), from the repository root, with the venv's `bin/` first on PATH.
  The one change made to their text: `/tmp/` becomes a fresh temporary folder, so runs
  never share state. Whole-line comments that show printed output (`# avloc <cmd>: ...`,
  `# note: ...`, `# /path`) must each be printed by the block, word for word with every
  number masked (counts and scores may differ by machine); one ending in ` ...` shows
  the start of a longer line. Step counts are the README's
  own (every training in it takes under 40 s on a 2-core CPU), so nothing is scaled. A
  block fails the test when it exits non-zero or prints a Python traceback.
* README.md runs as two sessions: "Run on your own videos" (from video files to actions,
  independent of the demo) and everything else. They are separate tests, so that the two
  CI workers take one each.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LANGUAGES = {"bash": "code", "python": "code", "text": "never run"}
VIDEO_SECTION = "Run on your own videos"

_REAL_FEATURES = "needs the public multi-GB feature files, which cannot be downloaded here"
_REAL_ANNOTATIONS = (
    "needs W-TALC's annotation folder at ~/anet and a trained ActivityNet workdir; "
    "tests/test_annotations.py runs export-gt on ../shared/data and "
    "tests/test_eval_detections_cli.py runs eval-detections"
)
_CHECKPOINTS = (
    "needs the downloaded PyTorch checkpoints (and torch); README 'Run on your own "
    "videos' runs the same commands on --random-init weights"
)

# (file relative to the repository, text the block's first line starts with) -> reason.
NOT_RUN: dict[tuple[str, str], str] = {
    ("README.md", "pip install -e '.[test]'"): (
        "the install line: CI's .ci/run runs it (with pinned versions) before the tests"
    ),
    ("README.md", "python -m pytest -q -n 2"): "the test command: it is what runs this test",
    ("README.md", "avloc build-data ave --data-dir ~/tensorflow_datasets"): _REAL_FEATURES,
    ("README.md", "avloc export-gt --annotations ~/anet"): _REAL_ANNOTATIONS,
    ("README.md", "avloc make-benchmark activitynet12 --annotations ~/anet"): (
        "the ablation study: 40-60 min of CPU a command (tests/test_benchmark.py and "
        "tests/test_bench_scripts.py run the same code at a smaller size)"
    ),
    ("README.md", "python bench/ablations.py --config configs/activitynet12.py"): (
        "the shipped-config ablations: 20-30 min of CPU, and real features for --data-dir"
    ),
    ("README.md", "pip install -e '.[convert]'"): _CHECKPOINTS,
    ("docs/data.md", "avloc build-data ave --data-dir ~/tensorflow_datasets"): _REAL_FEATURES,
    ("docs/data.md", "avloc build-data activitynet12 --data-dir ~/tensorflow_datasets"): (
        _REAL_FEATURES
    ),
    ("docs/data.md", "avloc build-data thumos14 --data-dir ~/tensorflow_datasets"): (
        _REAL_FEATURES
    ),
    ("docs/data.md", "avloc export-gt --annotations ~/anet"): _REAL_ANNOTATIONS,
    ("docs/data.md", "from avloc_jax.data import datasets"): _REAL_FEATURES,
    ("docs/extraction.md", "pip install -e '.[convert]'"): _CHECKPOINTS,
    ("docs/extraction.md", "avloc extract-features ~/anet/videos"): (
        "needs the ActivityNet videos and the converted checkpoints"
    ),
    ("docs/extraction.md", "avloc build-data activitynet12 --data-dir ~/tensorflow_datasets"): (
        _REAL_FEATURES
    ),
    ("docs/extraction.md", "cat > extract.sbatch"): (
        "needs a SLURM cluster; tests/test_extract_shards.py runs --shard 0/2, 1/2 and "
        "--merge on eight videos"
    ),
    ("docs/extraction.md", "srun --nodes=4"): (
        "needs a SLURM cluster; tests/test_extract_processes.py runs two processes under "
        "jax.distributed on localhost"
    ),
    ("docs/results.md", "avloc build-data activitynet12 --data-dir DIR"): _REAL_FEATURES,
    ("docs/results.md", "python bench/ablations.py --flavour activitynet12 --variants grid"): (
        "the ablation study: hours of CPU"
    ),
    ("docs/results.md", "python bench/ablations.py --flavour activitynet12 --variants full"): (
        "a reproduction check of 4 training runs (2-3 min); its outcome is in the text"
    ),
    ("docs/testing.md", "export JAX_PLATFORMS=cpu"): "mutation testing: about an hour of CPU",
    ("docs/benchmark.md", "avloc make-benchmark activitynet12 --out /tmp/bench/anet_src"): (
        "trains two benchmark configs for 600 steps each (minutes of CPU); "
        "tests/test_benchmark.py runs the same pipeline at a smaller size"
    ),
}


@dataclasses.dataclass(frozen=True)
class Block:
    document: str  # path relative to the repository
    line: int  # 1-based line of the opening fence
    language: str
    source: str
    section: str  # the closest "## " heading above it

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    def not_run_reason(self) -> str | None:
        first = self.source.lstrip().splitlines()[0] if self.source.strip() else ""
        for (document, start), reason in NOT_RUN.items():
            if document == self.document and first.startswith(start):
                return reason
        return None


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, in order."""
    tokens = MarkdownIt("commonmark").parse(path.read_text())
    found, section = [], ""
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            section = tokens[index + 1].content
        if token.type == "fence":
            assert token.map is not None
            found.append(
                Block(
                    str(path.relative_to(ROOT)),
                    token.map[0] + 1,
                    token.info.strip().split(" ")[0],
                    token.content,
                    section,
                )
            )
    return found


ALL_BLOCKS = [block for document in DOCUMENTS for block in blocks(document)]


def test_every_block_says_what_it_is():
    unlabelled = [f"{b.where} ({b.language or 'no language'})" for b in ALL_BLOCKS]
    unlabelled = [w for w, b in zip(unlabelled, ALL_BLOCKS) if b.language not in LANGUAGES]
    assert not unlabelled, f"fenced blocks must be ```bash, ```python or ```text: {unlabelled}"


def test_not_run_entries_each_match_a_block():
    code = [b for b in ALL_BLOCKS if LANGUAGES.get(b.language) == "code"]
    used = {
        key
        for b in code
        for key in NOT_RUN
        if key[0] == b.document and b.source.lstrip().startswith(key[1])
    }
    assert set(NOT_RUN) == used, f"stale NOT_RUN entries: {sorted(set(NOT_RUN) - used)}"


def session(document: str, keep) -> list[Block]:
    return [
        b
        for b in ALL_BLOCKS
        if b.document == document
        and LANGUAGES.get(b.language) == "code"
        and b.not_run_reason() is None
        and keep(b)
    ]


def run_blocks(run: list[Block], tmp_path: Path) -> None:
    """Runs `run` in order (module doc); fails at the first block that fails."""
    assert run, "nothing to run"
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["AVLOC_PROGRESS"] = "0"
    env["PYTHONPATH"] = str(ROOT)  # `from configs import ...` in Python blocks
    tmp = f"{tmp_path}/"
    for block in run:
        text = re.sub(r"/tmp/", tmp, block.source)
        if block.language == "bash":
            argv = ["bash", "-euo", "pipefail", "-c", text]
        else:
            argv = [sys.executable, "-c", text]
        result = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        output = f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-6000:]}"
        assert result.returncode == 0, f"{block.where} exited {result.returncode}\n{output}"
        assert "Traceback (most recent call last)" not in result.stdout + result.stderr, (
            f"{block.where} printed a traceback\n{output}"
        )
        printed = {_shape(line) for line in (result.stdout + result.stderr).splitlines()}
        for shown in shown_output(text):
            if shown.endswith(" ..."):  # a shown prefix of a longer line
                head = _shape(shown[: -len(" ...")])
                if any(line.startswith(head) for line in printed):
                    continue
            assert _shape(shown) in printed, (
                f"{block.where} shows the output line\n  {shown}\nwhich the command did not "
                f"print (numbers aside)\n{output}"
            )


SHOWN_PREFIXES = ("avloc ", "note: ", "/")  # a comment line that is a printed line


def shown_output(text: str) -> list[str]:
    """The whole-line comments of a block that show what it prints: lines starting with
    `# avloc <cmd>:`, `# note:` or `# /path` (after the /tmp/ substitution)."""
    shown = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") and stripped[2:].startswith(SHOWN_PREFIXES):
            shown.append(stripped[2:])
    return shown


def _shape(line: str) -> str:
    """A line with every run of digits as `#`: the shown outputs are checked word for
    word, but not their numbers (steps, counts, scores), which may differ by machine."""
    return re.sub(r"\d+", "#", line.strip())


DOCS_THAT_RUN = [d.name for d in DOCUMENTS[1:] if session(str(d.relative_to(ROOT)), lambda b: True)]


@pytest.mark.parametrize("name", DOCS_THAT_RUN)
def test_docs_blocks_run(name, tmp_path):
    """Each docs/ page whose blocks are meant to run, in its own temporary folder."""
    run_blocks(session(f"docs/{name}", lambda b: True), tmp_path)


def test_readme_runs_as_written(tmp_path):
    """Quick start, the workdir, evaluation tools, using a trained model, figures."""
    run_blocks(session("README.md", lambda b: b.section != VIDEO_SECTION), tmp_path)


def test_readme_videos_to_actions(tmp_path):
    """From video files to actions: toy videos (PyAV), random-weight I3D + VGGish,
    build-data generic, train, export, localize. Random weights and six 1.3-s videos: this
    checks the plumbing and the shapes, not accuracy."""
    run_blocks(session("README.md", lambda b: b.section == VIDEO_SECTION), tmp_path)
