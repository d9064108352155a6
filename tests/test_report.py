"""The README's measured table is exactly what ``bench report`` wrote (docs/measured.json), never typed by hand."""

import json
from pathlib import Path

import pytest

from modaverse_lite import claim, report

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
