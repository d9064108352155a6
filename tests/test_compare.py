"""The comparison harness: every field for every method, rate and seed; the best setting is the sweep's argmax; the
command line prints JSON; a method that cannot be built is a clear error. Scores are measured, never asserted."""

import json
import math

import pytest

from modaverse_lite import compare
from modaverse_lite.__main__ import main
from modaverse_lite.compare import METHODS, CompareConfig, Method
from modaverse_lite.errors import ProfileError
from modaverse_lite.profiles import get_profile
from modaverse_lite.zoo.text import world_corpus

#: A budget that only exercises the harness (a few steps: the scores mean nothing).
TINY = CompareConfig(steps=4, batch_size=8, warmup_steps=1, eval_every=2, eval_items=6, text_items=3)
#: A test-only second arm: the same parts as ModaVerse, centred on half its learning rate.
SECOND = Method("modaverse-half-lr", "converter", "linear", "lora", "test-only second arm", lr_scale=0.5)
RUN_FIELDS = {"seed", "lr", "steps", "train_seconds", "peak_memory_mb", "trainable_parameters", "total_parameters",
              "steps_to_target", "seconds_to_target", "val_exact", "val_routing", "unseen_exact", "unseen_routing",
              "phrasing_exact", "phrasing_routing", "per_pair", "text_loss_before", "text_loss_after",
              "text_exact_before", "text_exact_after", "history", "evals"}


@pytest.fixture(scope="module")
def small_data(tiny_zoo):
    from modaverse_lite.dataset import default_dataset

    return default_dataset("tiny", seed=0, records=300)  # built once into the cache


@pytest.fixture(scope="module")
def result(small_data):
    return compare.run("tiny", ["modaverse", SECOND], TINY, data_dir=small_data, progress=False)


def test_every_method_rate_and_seed_has_every_field(result):
    lr = get_profile("tiny").train.lr
    assert [m["name"] for m in result["methods"]] == ["modaverse", SECOND.name]
    for m, scale in zip(result["methods"], (1.0, SECOND.lr_scale)):
        assert {"name", "family", "aligner", "adapter", "paper", "trainable_parameters", "total_parameters", "lrs",
                "best_lr", "best", "sweep"} <= set(m)
        assert 0 < m["trainable_parameters"] < m["total_parameters"]
        assert m["lrs"] == [pytest.approx(lr * scale * f, rel=1e-2) for f in TINY.lr_factors]  # one rule for all
        assert [s["lr"] for s in m["sweep"]] == m["lrs"] and len(m["lrs"]) >= 3
        for s in m["sweep"]:
            assert [r["seed"] for r in s["runs"]] == list(TINY.seeds) and len(TINY.seeds) >= 2
            for r in s["runs"]:
                assert RUN_FIELDS <= set(r), RUN_FIELDS - set(r)
                assert r["lr"] == s["lr"] and r["steps"] == TINY.steps and len(r["history"]) == TINY.steps
                assert r["train_seconds"] > 0 and r["peak_memory_mb"] > 0
                assert [e["step"] for e in r["evals"]] == list(range(TINY.eval_every, TINY.steps + 1,
                                                                     TINY.eval_every))
                assert all({"seconds", "val_exact", "unseen_exact", "phrasing_exact"} <= set(e) for e in r["evals"])
                assert set(r["per_pair"]) == {"val", "unseen", "phrasing"}
                assert all({"exact", "routing"} <= set(v) for pairs in r["per_pair"].values() for v in pairs.values())
                assert math.isfinite(r["text_loss_before"]) and math.isfinite(r["text_loss_after"])
                assert 0 <= r["text_exact_before"] <= 1 and 0 <= r["text_exact_after"] <= 1
                if r["steps_to_target"] is not None:  # reached: at a periodic evaluation at or above the target
                    hit = next(e for e in r["evals"] if e["step"] == r["steps_to_target"])
                    assert hit["val_exact"] >= TINY.target and hit["seconds"] == r["seconds_to_target"]
            mean = sum(r["val_exact"] for r in s["runs"]) / len(s["runs"])
            assert s["val_exact"] == pytest.approx(mean, abs=1e-4)
            assert s["val_exact_worst"] == min(r["val_exact"] for r in s["runs"])


def test_the_best_setting_is_the_argmax_of_the_sweep(result):
    for m in result["methods"]:
        scores = [s["val_exact"] for s in m["sweep"]]
        assert m["best_lr"] == m["sweep"][scores.index(max(scores))]["lr"]  # ties: the first (lowest) rate
        assert m["best"]["lr"] == m["best_lr"] and m["best"]["val_exact"] == max(scores)
    rows = compare.table(result)
    assert [r["method"] for r in rows] == ["modaverse", SECOND.name]
    marked = [r for r in compare.sweep_table(result) if r["best"]]
    assert [(r["method"], r["lr"]) for r in marked] == [(m["name"], m["best_lr"]) for m in result["methods"]]


def test_summary_worst_seed_is_none_when_a_seed_never_reached_the_target():
    runs = [{k: 0.5 for k in compare.HIGHER + compare.LOWER} | {"steps_to_target": 40, "seconds_to_target": 2.0},
            {k: 0.7 for k in compare.HIGHER + compare.LOWER} | {"steps_to_target": None, "seconds_to_target": None}]
    s = compare.summary(runs)
    assert s["reached"] == 1 and s["steps_to_target"] == 40 and s["steps_to_target_worst"] is None
    assert s["val_exact"] == pytest.approx(0.6) and s["val_exact_worst"] == 0.5 and s["train_seconds_worst"] == 0.7


def test_held_out_text_is_text_the_llm_never_read():
    lines = compare.held_out_text()
    assert lines and not set(lines) & set(world_corpus())
    read = "\n".join(world_corpus())
    assert all(line.removeprefix("this is ").rstrip(".") not in read for line in lines if line.startswith("this"))
    assert {line.split()[-2] for line in lines if "tone" in line} and any("moving" in line for line in lines)


def test_an_unknown_or_unregistered_method_is_a_clear_error():
    with pytest.raises(ProfileError, match=r"'nope'.*modaverse"):
        compare.select(["nope"])
    with pytest.raises(ProfileError, match=r"input side 'nowhere'.*registered ones are \[.*'linear'"):
        compare.select([Method("x", "f", "nowhere", "lora", "p")])
    with pytest.raises(ProfileError, match=r"adapter 'nothing'.*'lora'"):
        compare.select([Method("x", "f", "linear", "nothing", "p")])
    for m in METHODS:  # every method of the table either builds or names what is missing
        if m.name not in compare.available():
            with pytest.raises(ProfileError, match=m.name):
                compare.select([m.name])
    assert set(compare.available()) == {m.name for m in METHODS}  # all six are registered
    with pytest.raises(ProfileError, match="preset"):
        CompareConfig.preset("slow")


def test_cli_prints_one_json_object_per_method(tiny_zoo, small_data, monkeypatch, capsys):
    from dataclasses import replace

    monkeypatch.setattr(CompareConfig, "quick", classmethod(lambda cls: replace(TINY, seeds=(0,), records=300)))
    assert main(["bench", "compare", "--quick", "--methods", "modaverse", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in out["methods"]] == ["modaverse"] and out["config"]["steps"] == TINY.steps
    assert all("history" not in r for s in out["methods"][0]["sweep"] for r in s["runs"])  # curves left out
    assert main(["bench", "compare", "--methods", "nope"]) == 2
    assert "'nope'" in capsys.readouterr().err
