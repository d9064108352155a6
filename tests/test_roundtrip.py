"""The round trip: structure and ranges on a short-trained checkpoint, and the meaning of each number with an
oracle LLM (one that always answers the target meta-response)."""

import json

import pytest
import torch

from modaverse_lite import records as ds
from modaverse_lite import roundtrip, world
from modaverse_lite.assistant import Assistant
from modaverse_lite.evaluate import attribute_probes
from modaverse_lite.roundtrip import (
    choose_records,
    format_roundtrip,
    roundtrip_eval,
    roundtrip_table,
)

RATES = ("routed", "generated", "prompt_accuracy", "accuracy", "generator_accuracy")


@pytest.fixture(scope="module")
def assistant(short_run, tmp_path_factory):
    return Assistant(short_run.checkpoint, out_dir=tmp_path_factory.mktemp("outputs"))


@pytest.fixture(scope="module")
def probes():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # seven tiny linear fits: extra threads only stall when the 2 cores are busy
    try:
        return attribute_probes("tiny", n_train=72, seed=0)  # small: fast, and right most of the time
    finally:
        torch.set_num_threads(threads)


def _check_ranges(part: dict, n: int) -> None:
    assert part["n"] == n
    for key in RATES:
        assert part[key] is None or 0.0 <= part[key] <= 1.0, (key, part[key])
    assert part["generated"] <= part["routed"]  # a file is only made for a routed answer
    assert part["accuracy"] <= part["generated"]  # and only a file can be right
    assert all(part["accuracy"] <= v <= 1 for v in part["per_attribute"].values())
    for key in ("similarity", "generator_similarity", "mismatched_similarity"):
        assert part[key] is None or -1.0 <= part[key] <= 1.0
    assert sum(p["n"] for p in part["per_pair"].values()) == n


def test_roundtrip_eval_is_keyed_by_modality_with_rates_in_range(assistant, probes):
    result = roundtrip_eval(assistant, n_per_modality=4, probes=probes)
    assert list(result) == ["image", "audio", "video"]
    for modality, part in result.items():
        assert part["split"] == "test" and part["unseen"]["split"] == "unseen"
        _check_ranges(part, 4)
        _check_ranges(part["unseen"], 4)
        assert set(part["per_attribute"]) == set(world.ATTRIBUTES[modality])
        assert all("->" + modality in pair for pair in part["per_pair"])
    json.dumps(result)
    rows = roundtrip_table(result)
    assert [(r["modality"], r["split"]) for r in rows] == [(m, s) for m in result for s in ("test", "unseen")]
    assert format_roundtrip(result).splitlines()[0].split()[:2] == ["modality", "split"]


def test_records_are_chosen_by_target_modality_split_and_seed(world_data):
    records = ds.read_records(world_data)
    chosen = choose_records(records, "audio", "unseen", 10, seed=1)
    assert len(chosen) == 10 and all(r.target.modality == "audio" and r.split == "unseen" for r in chosen)
    assert chosen == choose_records(records, "audio", "unseen", 10, seed=1)
    assert chosen != choose_records(records, "audio", "unseen", 10, seed=2)
    assert {r.pair for r in choose_records(records, "audio", "test", 40)} >= {"text->audio", "image+text->audio"}


def test_with_an_oracle_llm_the_numbers_mean_what_they_say(assistant, probes, monkeypatch, tmp_path):
    monkeypatch.setattr(roundtrip, "_responses", lambda assistant, records, *a, **k: [r.response() for r in records])
    result = roundtrip_eval(assistant, n_per_modality=6, probes=probes, unseen=False, out_dir=tmp_path, seed=3)
    written = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert len(written) == 3 * 6  # one file per record, kept in out_dir
    for part in result.values():
        assert "unseen" not in part
        assert part["routed"] == part["generated"] == part["prompt_accuracy"] == 1.0
        # the LLM asked for exactly the target, so end-to-end accuracy is the generator's
        assert part["accuracy"] == part["generator_accuracy"] >= 0.5
        assert part["similarity"] == part["generator_similarity"] > part["mismatched_similarity"]


def test_without_probes_only_similarity_is_reported(assistant):
    part = roundtrip_eval(assistant, n_per_modality=2, probes=False, unseen=False)["image"]
    assert part["accuracy"] is part["generator_accuracy"] is part["per_attribute"] is None
    assert part["n"] == 2 and 0 <= part["routed"] <= 1


def test_bad_arguments_are_refused(assistant):
    with pytest.raises(ValueError, match="split"):
        roundtrip_eval(assistant, split="nope")
    with pytest.raises(ValueError, match="n_per_modality"):
        roundtrip_eval(assistant, n_per_modality=0)
