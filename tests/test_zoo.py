import os
import time

import pytest
import torch
from safetensors.torch import load_file

from modaverse_lite import encode, world, zoo
from modaverse_lite.errors import CheckpointError
from modaverse_lite.profiles import TINY
from modaverse_lite.zoo import pretrain


def test_zoo_entries_are_real_transformers_classes(tiny_zoo):
    from transformers import AutoConfig

    kinds = {name: AutoConfig.from_pretrained(path).model_type for name, path in tiny_zoo.items()}
    assert kinds == {"clip": "clip", "clap": "clap", "llm": "qwen2"}


def test_second_call_loads_the_cache_without_rebuilding(tiny_zoo):
    done = tiny_zoo["clip"] / "DONE"
    before = done.stat().st_mtime_ns
    start = time.perf_counter()
    assert zoo.ensure("clip") == tiny_zoo["clip"]
    assert time.perf_counter() - start < 5 and done.stat().st_mtime_ns == before


def test_a_recipe_change_gets_a_new_folder(monkeypatch):
    before = zoo.path("llm")
    monkeypatch.setitem(pretrain.RECIPES, "llm", {**pretrain.RECIPES["llm"], "steps": 7})
    assert zoo.path("llm") != before and zoo.path("llm").parent == before.parent


def test_build_is_deterministic(tmp_path):
    recipe = {**pretrain.RECIPES["llm"], "steps": 3, "copies": 40}
    for name in ("a", "b"):
        pretrain.build_llm(tmp_path / name, recipe)
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()


def test_an_interrupted_build_leaves_nothing_behind(monkeypatch, tmp_path):
    monkeypatch.setenv("MODAVERSE_CACHE", str(tmp_path))

    def broken(out, recipe):
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setitem(zoo._BUILDERS, "clip", broken)
    with pytest.raises(KeyboardInterrupt):
        zoo.ensure("clip")
    assert not zoo.path("clip").exists()
    assert os.listdir(tmp_path / "zoo") == []


def test_unknown_entry_is_named():
    with pytest.raises(CheckpointError, match="'dalle'"):
        zoo.path("dalle")


def test_tokenizer_encodes_any_text_and_round_trips(tiny_zoo):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_zoo["llm"])
    for text in ("a red circle moving left", "Ünïcode ✓ and 123 <b>", world.caption("audio", {"pitch": "low",
                                                                                                "timbre": "sine"})):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.unk_token_id not in ids
        assert tok.decode(ids).strip() == text


@pytest.mark.parametrize("name,modality", [("clip", "image"), ("clap", "audio"), ("clip", "video")])
def test_hub_layout_round_trip(tiny_zoo, tmp_path, name, modality):
    """save_pretrained → load through the profile loader by path → identical features."""
    from dataclasses import replace

    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoModel, AutoTokenizer

    src = tiny_zoo[name]
    AutoModel.from_pretrained(src).save_pretrained(tmp_path)
    (AutoFeatureExtractor if name == "clap" else AutoImageProcessor).from_pretrained(src).save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(src).save_pretrained(tmp_path)
    role = "audio_encoder" if name == "clap" else "image_encoder"
    copy = TINY.with_(checkpoints=replace(TINY.checkpoints, **{role: str(tmp_path)}))
    items = [s.data for s in world.generate(modality, 4, seed=9)]
    a = encode.encode(items, modality, "tiny", cache=False, source_rate=world.SAMPLE_RATE, progress=False)
    b = encode.encode(items, modality, copy, cache=False, source_rate=world.SAMPLE_RATE, progress=False)
    assert torch.equal(a, b)


def test_llm_hub_layout_round_trip(tiny_zoo, tmp_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_zoo["llm"])
    model.save_pretrained(tmp_path)
    again = AutoModelForCausalLM.from_pretrained(tmp_path)
    ids = torch.tensor([[2, 5, 9, 11, 40]])
    assert torch.equal(model(ids).logits, again(ids).logits)


def test_tone_captions_name_one_attribute_each():
    assert pretrain.tone_captions({"pitch": "low", "timbre": "sawtooth"}) == ["a low tone", "a sawtooth tone"]


def test_clap_knows_each_attribute_of_a_tone_by_name(tiny_zoo):
    """CLAP also learned one-attribute captions, so "a low tone" picks out the low tones of every timbre, the
    held-out pitch × timbre pairs included: what lets the aligned LLM name a pair it was never trained on."""
    tones = world.generate("audio", 30, seed=5, split="unseen")
    clap = encode.load_encoder("audio", "tiny")
    audio = clap.embed([clap.load(t.data, world.SAMPLE_RATE) for t in tones])  # L2-normalised, like embed_text
    for name in world.ATTRIBUTES["audio"]:
        values = world.VALUES[name]
        text = clap.embed_text([f"a {v} tone" for v in values])
        guess = (audio @ text.T).argmax(-1)
        truth = torch.tensor([values.index(t.attributes[name]) for t in tones])
        assert (guess == truth).float().mean() >= 0.9, name
