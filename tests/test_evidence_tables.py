"""bench/evidence_tables.py: every generated table in docs/ is what the JSON reports give
(CI fails on a stale table), and the generator replaces only its own blocks."""

import importlib
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))
evidence_tables = importlib.import_module("evidence_tables")


def test_the_repository_tables_are_up_to_date(capsys):
    assert evidence_tables.main(["--check"]) == 0, capsys.readouterr().err


def _docs_copy(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs" / "ablations", docs / "ablations")
    for name in ("results.md", "results_activitynet12.json", "results_ave.json"):
        shutil.copy(REPO / "docs" / name, docs / name)
    return docs


def test_a_stale_block_is_caught_and_rewritten_prose_kept(tmp_path, capsys):
    docs = _docs_copy(tmp_path)
    results = docs / "results.md"
    text = results.read_text()
    begin = "<!-- evidence:conditions begin -->\n"
    stale = text.replace(begin, begin + "| a hand-typed line |\n", 1)
    stale = stale.replace("### Answers", "### Answers (hand-written prose)", 1)
    results.write_text(stale)
    report_md = next((docs / "ablations").glob("*.md"))
    report_md.write_text("old table\n")
    assert evidence_tables.main(["--check", "--docs", str(docs)]) == 1
    err = capsys.readouterr().err
    assert "results.md" in err and report_md.name in err
    assert evidence_tables.main(["--docs", str(docs)]) == 0
    fixed = results.read_text()
    assert "| a hand-typed line |" not in fixed
    assert "### Answers (hand-written prose)" in fixed  # prose is not generated
    assert report_md.read_text() != "old table\n"
    assert evidence_tables.main(["--check", "--docs", str(docs)]) == 0
    assert not list(docs.rglob("*.tmp"))  # atomic writes leave no temporary file


def test_a_missing_marker_is_an_error(tmp_path, capsys):
    docs = _docs_copy(tmp_path)
    results = docs / "results.md"
    results.write_text(results.read_text().replace("<!-- evidence:stability end -->", ""))
    assert evidence_tables.main(["--check", "--docs", str(docs)]) == 1
    assert "stability" in capsys.readouterr().err


def test_generated_tables_use_the_new_statistics():
    text = (REPO / "docs" / "results.md").read_text()
    block = text.split("<!-- evidence:conditions begin -->")[1].split("<!-- evidence:")[0]
    # sparse_audio's first five seeds: the paired t interval the old 2-std rule had called
    # "refuted" is supported; the replication's seeds and all ten are read separately.
    replication = text.split("<!-- evidence:replication begin -->")[1].split("<!-- evidence:")[0]
    first = next(line for line in replication.splitlines() if "seeds 0–4" in line)
    assert "| +4.41 ± 2.89 | [+0.83, +8.00] | 0.027 |" in first
    assert "supported (full ahead)" in first
    sparse = next(line for line in block.splitlines() if "| sparse_audio |" in line)
    assert "| gate0 | 10 |" in sparse and "inconclusive" in sparse
    assert "earns its place" not in text and "(> 2 std)" not in text
    assert "sample std (ddof = 1)" in block
    # The hand-written machine note of the old reports is not shown as measured.
    assert "recorded by hand before this fix" in block
