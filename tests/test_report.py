"""The README's measured table is exactly what ``bench report`` wrote (docs/measured.json), never typed by hand."""

import json
from pathlib import Path

import pytest

from modaverse_lite import claim, instructions, report

ROOT = Path(__file__).resolve().parents[1]


def test_the_readme_shows_what_docs_measured_json_holds():
    measured = json.loads((ROOT / "docs" / "measured.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert report.replace_table(readme, report.render(measured)) == readme, (
        "the README's measured table differs from docs/measured.json: run `python -m modaverse_lite bench report`")


def test_the_measured_figures_name_their_machine_versions_and_targets():
    measured = json.loads((ROOT / "docs" / "measured.json").read_text(encoding="utf-8"))
    machine = measured["machine"]
    assert machine["cores"] >= 1 and machine["date"] and set(machine["versions"]) == set(report.LIBRARIES)
    seeds = measured["seeds"]
    assert seeds["seeds"] == [0, 1, 2] and len(seeds["runs"]) == 3
    assert seeds["targets"] == report.TARGETS
    assert seeds["targets_met"] == report.targets_met(seeds["summary"])
    for key in ("val_exact", "unseen_exact", "phrasing_exact", "val_pair_exact_min"):
        values = [run[key] for run in seeds["runs"]]
        assert seeds["summary"][key]["min"] == min(values)  # the worst seed, as reported
        assert seeds["summary"][key]["mean"] == pytest.approx(sum(values) / len(values), abs=1e-4)


def test_replacing_the_table_keeps_everything_around_it_and_refuses_a_readme_without_markers():
    text = f"intro\n{report.BEGIN}\nold table\n{report.END}\noutro\n"
    new = report.replace_table(text, "| new |")
    assert new == f"intro\n{report.BEGIN}\n| new |\n{report.END}\noutro\n"
    assert report.replace_table(new, "| new |") == new
    with pytest.raises(ValueError, match="measured:begin"):
        report.replace_table("no markers here", "| new |")
    with pytest.raises(ValueError):
        report.replace_table(f"{report.END}\n{report.BEGIN}", "x")


def test_targets_are_judged_on_the_worst_seed():
    summary = {key: {"min": bound, "max": bound, "mean": bound} for key, bound in report.TARGETS.items()}
    assert all(report.targets_met(summary).values())
    summary["phrasing_exact"]["min"] = report.TARGETS["phrasing_exact"] - 0.01  # one seed short
    summary["train_seconds"]["max"] = report.TARGETS["train_seconds"] + 1  # one seed too slow
    met = report.targets_met(summary)
    assert not met["phrasing_exact"] and not met["train_seconds"] and met["val_exact"]


def test_the_machine_is_described():
    m = report.machine()
    assert m["cpu"] and m["python"] and m["versions"]["torch"]


def test_the_readme_shows_what_docs_compare_json_holds():
    result = json.loads((ROOT / "docs" / "compare.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert result["preset"] == "full" and len(result["methods"]) == 6
    table = report.render_compare(result)
    assert report.replace_table(readme, table, report.COMPARE_BEGIN, report.COMPARE_END) == readme, (
        "the README's comparison tables differ from docs/compare.json: run `python -m modaverse_lite bench compare "
        "--write`")


def test_the_readme_shows_what_docs_claim_json_holds():
    result = json.loads((ROOT / "docs" / "claim.json").read_text(encoding="utf-8"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert result["preset"] == "full" and [a["name"] for a in result["arms"]] == [a.name for a in claim.ARMS]
    table = report.render_claim(result)
    assert report.replace_table(readme, table, report.CLAIM_BEGIN, report.CLAIM_END) == readme, (
        "the README's claim tables differ from docs/claim.json: run `python -m modaverse_lite bench claim --write`")


def test_the_readme_shows_what_docs_demos_json_holds():
    """Three seeds of the demos profile in docs/demos.json, and their tables in the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    result = json.loads((ROOT / "docs" / "demos.json").read_text(encoding="utf-8"))
    assert result["profile"] == "demos" and result["seeds"] == [0, 1, 2]
    assert result["targets_met"] == report.targets_met(result["summary"])
    assert all(set(r["per_pair_exact"]["val"]) == set(instructions.ALL_PAIRS) for r in result["runs"])
    assert "Not yet measured on three seeds" not in readme
    assert report.replace_table(readme, report.render_demos(result), report.DEMOS_BEGIN, report.DEMOS_END) == readme, (
        "the README's demo tables differ from docs/demos.json: run `python -m modaverse_lite bench seeds --profile "
        "demos --write`")


def _seeds_result(profile: str = "demos") -> dict:
    """A two-seed ``bench seeds`` result in its real shape, with made-up scores, for the writer's tests."""
    runs = []
    for seed, (a, b) in enumerate(((1.0, 0.5), (0.8, 0.75))):
        run = {key: a for key in report.TARGETS} | {"seed": seed, "steps": 10, "train_seconds": 100.0 + seed}
        run["per_pair_exact"] = {"val": {"text->text": a, "text->image+audio": b}, "unseen": {"text->text": b}}
        run["per_segment"] = {"val": {"text->image+audio": {"n": 4, "exact": b, "segment_exact": [a, b]}}}
        runs.append(run)
    summary = {key: {"mean": round(sum(r[key] for r in runs) / 2, 4), "min": min(r[key] for r in runs),
                     "max": max(r[key] for r in runs)} for key in report.TARGETS}
    return {"profile": profile, "seeds": [0, 1], "runs": runs, "summary": summary, "threads": 2}


def test_the_demo_tables_give_each_pair_its_mean_and_worst_seed_and_each_segment(tmp_path):
    rows = {row["pair"]: row for row in report.pairs_rows(_seeds_result())}
    assert list(rows) == ["`text->text`", "`text->image+audio`"], "in the order of instructions.ALL_PAIRS"
    assert rows["`text->text`"]["val"] == "0.9 (0.8)" and rows["`text->text`"]["unseen"] == "0.625 (0.5)"
    assert rows["`text->text`"]["phrasing"] == "–" and rows["`text->text`"]["val, each segment"] == "–"
    assert rows["`text->image+audio`"]["kind"] == "two outputs"
    assert rows["`text->image+audio`"]["val, each segment"] == "0.9 (0.8) + 0.625 (0.5)"
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.DEMOS_BEGIN}\nold\n{report.DEMOS_END}\noutro\n", encoding="utf-8")
    written = report.write_demos(_seeds_result(), readme, tmp_path / "demos.json")
    assert json.loads((tmp_path / "demos.json").read_text(encoding="utf-8")) == written
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n") and text.endswith("outro\n") and "| train_seconds | 100 / 101 | 101 |" in text
    with pytest.raises(ValueError, match="'tiny'"):
        report.write_demos(_seeds_result("tiny"), readme, tmp_path / "demos.json")
