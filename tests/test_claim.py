"""The claim's harness (claim.py) and its schedules (schedules.py): every arm, rate, seed and data cut has every
field; the three stages train only their own parts, on their own data; the data of every stage is counted; the
command line and the README block agree with what was measured. Scores are measured, never asserted."""

import json

import pytest
import torch

from modaverse_lite import claim, report
from modaverse_lite.__main__ import main
from modaverse_lite.assistant import Assistant
from modaverse_lite.claim import ARMS, ClaimConfig
from modaverse_lite.encode import record_features
from modaverse_lite.errors import ProfileError
from modaverse_lite.latent import Conditioning, build_latent_model
from modaverse_lite.model import build_model
from modaverse_lite.records import read_records
from modaverse_lite.roundtrip import roundtrip_eval
from modaverse_lite.schedules import (
    CAPTION_REQUEST,
    GROUPS,
    one_stage,
    parameter_groups,
    run_schedule,
    stage_examples,
    three_stages,
)

#: A budget that only exercises the harness (a few steps: the scores mean nothing).
TINY = ClaimConfig(steps=4, caption_steps=2, decoding_steps=2, batch_size=8, warmup_steps=1, eval_every=2,
                   eval_items=2, periodic_items=1, lr_factors=(1.0, 2.0), sweep_seeds=(0,), seeds=(0, 1),
                   data_sizes=(60,), records=300)
RUN_FIELDS = {"seed", "lr", "records", "data", "data_per_stage", "groups_per_stage", "train_seconds",
              "seconds_per_stage", "trainable_per_stage", "trainable_parameters", "roundtrip", "unseen_roundtrip",
              "routed", "unseen_routed", "seconds_to_target", "steps_to_target", "evals",
              *(f"{m}_{k}" for m in ("image", "audio", "video")
                for k in ("roundtrip", "routed", "unseen_roundtrip", "unseen_routed"))}


@pytest.fixture(scope="module")
def train_data(tiny_zoo):
    from modaverse_lite.dataset import default_dataset

    root = default_dataset("tiny", seed=0, records=300)
    records = [r for r in read_records(root) if r.split == "train"]
    features, rows = record_features(records, root, "tiny", progress=False)
    return root, records, rows, features


@pytest.fixture(scope="module")
def result(train_data):
    return claim.run("tiny", None, TINY, progress=False)


def test_every_arm_rate_seed_and_data_cut_has_every_field(result):
    assert [a["name"] for a in result["arms"]] == [a.name for a in ARMS]
    for arm in result["arms"]:
        assert [s["lr"] for s in arm["sweep"]] == arm["lrs"]
        for run in [r for s in arm["sweep"] for r in s["runs"]] + [r for runs in arm["data_runs"] for r in runs]:
            assert RUN_FIELDS <= set(run), RUN_FIELDS - set(run)
            assert run["train_seconds"] == pytest.approx(sum(run["seconds_per_stage"].values()), abs=0.05)
        for s in arm["sweep"]:  # the sweep from sweep_seeds; the chosen rate from every seed
            seeds = [r["seed"] for r in s["runs"]]
            assert seeds == ([0, 1] if s["lr"] == arm["best_lr"] else [0])
            assert all(r["evals"] and r["evals"][-1]["step"] == TINY.steps for r in s["runs"])  # periodic
        assert all(not r["evals"] for runs in arm["data_runs"] for r in runs)  # cuts: the final score only
        assert [r["seed"] for runs in arm["data_runs"] for r in runs] == [0, 1] * len(TINY.data_sizes)
        assert len(arm["data"]) == len(TINY.data_sizes) + 1  # the cuts, then the whole training split


def test_the_best_rate_is_the_sweeps_argmax(result):
    for arm in result["arms"]:
        def on_sweep_seeds(s):
            values = [r["roundtrip"] for r in s["runs"] if r["seed"] in TINY.sweep_seeds and r["roundtrip"] is not None]
            return sum(values) / len(values) if values else -1.0

        scores = {s["lr"]: on_sweep_seeds(s) for s in arm["sweep"]}
        assert scores[arm["best_lr"]] == pytest.approx(max(scores.values()))
        best = next(s for s in arm["sweep"] if s["lr"] == arm["best_lr"])
        assert arm["best"]["roundtrip"] == claim.summary(best["runs"])["roundtrip"]  # over every seed
        assert all(r["lr"] == arm["best_lr"] for runs in arm["data_runs"] for r in runs)


def test_every_stage_data_is_counted(result):
    for arm in result["arms"]:
        whole = arm["data"][-1]
        cut = arm["data"][0]
        assert cut["records"] == TINY.data_sizes[0] < whole["records"]
        groups = arm["sweep"][0]["runs"][0]["groups_per_stage"]
        assert ("output" in groups[arm["stages"][-1]["name"]]) == (arm["output"] == "latent")  # only what exists
        if arm["schedule"] == "three":
            assert whole["data"] > whole["records"]  # captions and caption pairs come on top
            assert len(arm["stages"]) == 3
        else:
            assert whole["data"] == whole["records"] and len(arm["stages"]) == 1


def test_the_stages_name_what_they_train():
    latent, meta_three = three_stages("latent", 10, 2, 3), three_stages("meta", 10, 2, 3)
    assert [s.trains for s in latent] == [("input", "tokens"), ("output", "tokens"), GROUPS]
    assert meta_three[1].trains == ("lora",)  # no output projection: LoRA learns to write the meta-response
    assert [s.data for s in latent] == ["captions", "caption pairs", "instructions"]
    assert one_stage(7)[0].trains == GROUPS and one_stage(7)[0].steps == 7


def test_the_groups_cover_every_trainable_tensor_once(train_data):
    model = build_latent_model("tiny", seed=0, conditioning=Conditioning("tiny"))
    groups = parameter_groups(model)
    ids = [id(q) for g in GROUPS for q in groups[g]]
    assert len(ids) == len(set(ids)) == sum(q.requires_grad for q in model.parameters())
    assert all(groups[g] for g in GROUPS)


def test_each_stage_trains_only_its_parts(train_data):
    root, records, rows, features = train_data
    model = build_latent_model("tiny", seed=0, conditioning=Conditioning("tiny"))
    groups = parameter_groups(model)

    def snapshot():
        return {g: [q.detach().clone() for q in groups[g]] for g in GROUPS}

    before = snapshot()
    stage1, stage2, _ = three_stages("latent", 2, 3, 3)
    run_schedule(model, (stage1,), records, rows, features, lr=1e-2, batch_size=8, warmup_steps=1)
    after = snapshot()
    moved = {g for g in GROUPS if any(not torch.equal(a, b) for a, b in zip(before[g], after[g]))}
    assert moved == {"input", "tokens"}
    run_schedule(model, (stage2,), records, rows, features, lr=1e-2, batch_size=8, warmup_steps=1)
    again = snapshot()
    moved = {g for g in GROUPS if any(not torch.equal(a, b) for a, b in zip(after[g], again[g]))}
    assert moved == {"output", "tokens"}


def test_stage_data_captions_and_caption_pairs(train_data):
    root, records, rows, features = train_data
    model = build_model("tiny", seed=0)
    captions = stage_examples(model, "captions", records, rows)
    media_rows = {row for row in rows if row is not None}
    assert len(captions) == len(media_rows)  # one per distinct medium
    first = next((r, row) for r, row in zip(records, rows) if row is not None)
    ex = captions[0]
    assert (ex.modality, ex.row) == first[1]
    assert model.tokenizer.decode(ex.target, skip_special_tokens=True).strip() == first[0].captions[first[1][0]]
    assert CAPTION_REQUEST in model.tokenizer.decode(ex.tail)
    pairs = stage_examples(model, "caption pairs", records, rows)
    assert len(pairs) == sum(1 for r in records if not r.inputs and r.target.modality != "text")


def test_an_unknown_arm_is_refused_by_name():
    with pytest.raises(ProfileError, match="no-such-arm"):
        claim.select(["modaverse", "no-such-arm"])
    with pytest.raises(ProfileError, match="full"):
        ClaimConfig.preset("huge")


def test_a_model_in_memory_gets_the_round_trip_of_a_checkpoint(train_data):
    root, *_ = train_data
    assistant = Assistant.from_model(build_model("tiny", seed=0), "tiny", root)
    scores = roundtrip_eval(assistant, root, n_per_modality=2, unseen=False)
    assert {"image", "audio", "video"} <= set(scores) and scores["image"]["n"] == 2


def test_bench_claim_prints_json_and_writes_the_readme_block(result, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ClaimConfig, "quick", classmethod(lambda cls: TINY))
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.CLAIM_BEGIN}\nold\n{report.CLAIM_END}\nrest\n", encoding="utf-8")
    out = tmp_path / "claim.json"
    assert main(["bench", "claim", "--quick", "--arms", "modaverse", "nextgpt", "--json", "--write",
                 "--readme", str(readme), "--claimed", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [a["name"] for a in printed["arms"]] == ["modaverse", "nextgpt"] and printed["preset"] == "quick"
    written = json.loads(out.read_text(encoding="utf-8"))
    text = readme.read_text(encoding="utf-8")
    assert report.render_claim(written) in text and "old" not in text and text.endswith("rest\n")
    assert all("history" not in r for a in written["arms"] for s in a["sweep"] for r in s["runs"])
