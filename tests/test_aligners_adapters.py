"""The LLM adapters beside LoRA — LaVIN's mixture-of-modality adapters ("moma") and full fine-tuning ("full") — and
LaVIN's input side ("lavin")."""

import copy

import pytest
import torch

from modaverse_lite.aligners import ADAPTERS, INPUT_SIDES, TwoLayerProjection
from modaverse_lite.aligners.moma import FILE as MOMA_FILE
from modaverse_lite.aligners.moma import MEDIA, TEXT_ONLY, MixtureOfModalityAdapter, MoMA, adapters
from modaverse_lite.errors import CheckpointError
from modaverse_lite.model import ModaVerseLite, build_model, fit_embeddings
from modaverse_lite.profiles import get_profile


def _model(aligner, adapter):
    return build_model(get_profile("tiny").with_(aligner=aligner, adapter=adapter), seed=0)


@pytest.fixture(scope="module")
def moma(tiny_zoo):
    return _model("lavin", "moma")


@pytest.fixture(scope="module")
def full(tiny_zoo):
    return _model("linear", "full")


def _batch(model):
    g = torch.Generator().manual_seed(0)
    features = {"image": torch.randn(3, model.feature_dims["image"], generator=g),
                "audio": torch.randn(2, model.feature_dims["audio"], generator=g),
                "video": torch.randn(2, 8, model.feature_dims["video"], generator=g)}
    examples = [model.tokenize("Describe this image.", "image", 1, "Modality: [TEXT] Prompt: a red circle"),
                model.tokenize("Draw a blue square.", None, -1, "Modality: [IMAGE] Prompt: a blue square"),
                model.tokenize("What is this sound?", "audio", 0, "Modality: [TEXT] Prompt: a low sine tone"),
                model.tokenize("Describe this video.", "video", 1, "Modality: [TEXT] Prompt: a red circle moving up"),
                model.tokenize("Play a high tone.", None, -1, "Modality: [AUDIO] Prompt: a high sine tone")]
    return examples, features


def _base_llm(model):
    """The LLM the model was built on, as it is on disk (its table grown the same seeded way)."""
    from transformers import AutoModelForCausalLM

    llm = AutoModelForCausalLM.from_pretrained(model.config.llm, dtype=torch.float32)
    fit_embeddings(llm, len(model.tokenizer))
    return llm.eval()


def _train(model, steps, lr):
    examples, features = _batch(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for step in range(steps):
        torch.manual_seed(step)
        loss = model.loss(examples, features)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), losses


# ---- LaVIN's input side ---------------------------------------------------------------------------------------
def test_lavin_input_side_is_a_two_layer_projection_per_modality():
    image = TwoLayerProjection(64, 32)
    assert image(torch.randn(5, 64)).shape == (5, 1, 32)
    assert [type(m).__name__ for m in image.linear] == ["Linear", "SiLU", "Linear"]
    assert image.linear[0].out_features == 128
    video = TwoLayerProjection(64, 32, tokens=2, frames=8)
    clip = torch.randn(3, 8, 64)
    assert video(clip).shape == (3, 2, 32) and video.linear[0].in_features == 64 * (1 + 4)  # mean + 4 frames' motion
    assert not torch.allclose(video(clip), video(clip.flip(1)))  # order (motion) survives
    sides = INPUT_SIDES["lavin"]({"image": 64, "video": 48}, 32, media_tokens=3, video_tokens=4, video_frames=8)
    assert sides.tokens("image") == 3 and sides.tokens("video") == 4
    assert sides("video", torch.randn(2, 8, 48)).shape == (2, 4, 32)
    with pytest.raises(ValueError, match="8 video frames cannot be cut into 3"):
        TwoLayerProjection(64, 32, tokens=3, frames=8)


# ---- what trains -------------------------------------------------------------------------------------------------
def test_moma_trains_only_its_adapters_routers_modality_tokens_and_the_input_side(moma):
    h, layers = moma.llm.config.hidden_size, moma.llm.config.num_hidden_layers
    s = MoMA.settings
    trainable = {n for n, p in moma.named_parameters() if p.requires_grad}
    assert all(".adapter." in n or n.startswith(("llm.modality_embedding", "projections.")) for n in trainable)
    assert not any(p.requires_grad for n, p in moma.named_parameters()
                   if ".adapter." not in n and not n.startswith(("llm.modality_embedding", "projections.")))
    assert isinstance(moma.llm.model.layers[0].input_layernorm.adapter, MixtureOfModalityAdapter)
    per_block = (h * s.rank + s.rank) + 2 * (s.rank * h // s.groups + h) + (2 * h + 2)  # Dn, U0 and U1, router
    counts = moma.parameter_counts()
    assert counts["LLM adapter + new-token rows (trainable)"] == layers * per_block + 2 * h
    assert counts["projections (trainable)"] == sum(p.numel() for p in moma.projections.parameters())
    assert counts["LLM frozen"] == sum(p.numel() for p in _base_llm(moma).parameters())  # the whole LLM


def test_full_fine_tuning_trains_every_llm_weight(full):
    counts = full.parameter_counts()
    assert counts["LLM frozen"] == 0
    assert counts["LLM adapter + new-token rows (trainable)"] == sum(p.numel() for p in _base_llm(full).parameters())
    assert all(p.requires_grad for p in full.llm.parameters())


# ---- MoMA: zero start, routing ---------------------------------------------------------------------------------------
def _logits(llm, inputs):
    return llm(inputs_embeds=inputs.inputs_embeds, attention_mask=inputs.attention_mask,
               position_ids=inputs.position_ids).logits


def test_zero_initialised_up_projections_leave_the_llm_as_it_was(moma):
    examples, features = _batch(moma)
    inputs = moma.build_inputs(examples, features)
    real = inputs.attention_mask.bool()
    with torch.no_grad(), moma.routing(examples):
        adapted = _logits(moma.llm, inputs)
    base = _logits(_base_llm(moma), inputs).detach()
    assert torch.allclose(adapted[real], base[real], atol=1e-5)
    changed = copy.deepcopy(moma)  # the check has teeth: a non-zero up-projection changes the answer
    torch.nn.init.normal_(adapters(changed.llm)[0].up[1].weight, std=0.5)
    with torch.no_grad(), changed.routing(examples):
        assert not torch.allclose(_logits(changed.llm, inputs)[real], base[real], atol=1e-3)


def _perturbed(model):
    model = copy.deepcopy(model).eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for a in adapters(model.llm):
            for p in [*a.up.parameters(), *a.router.parameters()]:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


def test_the_router_reads_the_modality_token_as_lavin_places_it(moma):
    """LaVIN's literal form: the modality token prepended at position 0, hidden from every other token by the
    attention mask, each block's router reading position 0 of its input. Our decision pass gives the same logits."""
    model = _perturbed(moma)
    examples, features = _batch(model)
    inputs = model.build_inputs(examples, features)  # right padding
    media = [ex.modality is not None for ex in examples]
    with torch.no_grad():
        with model.routing(examples):
            ours = _logits(model.llm, inputs)
            weights = [a.weights.clone() for a in adapters(model.llm)]
        token = model.llm.modality_embedding.weight[[MEDIA if m else TEXT_ONLY for m in media]][:, None]
        embeds = torch.cat([token, inputs.inputs_embeds], 1)
        mask2d = torch.cat([torch.ones(len(examples), 1, dtype=torch.long), inputs.attention_mask], 1)
        n = embeds.shape[1]
        allowed = torch.ones(n, n).tril().bool()[None] & mask2d.bool()[:, None, :]
        allowed[:, 1:, 0] = False  # LaVIN: mask[:, :, 1:, 0] = -inf
        mask4d = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)[:, None]
        for a in adapters(model.llm):
            a.deciding = True
        try:
            theirs = model.llm(inputs_embeds=embeds, attention_mask=mask4d,
                               position_ids=torch.arange(n)[None].expand(len(examples), -1)).logits[:, 1:]
            their_weights = [a.weights.clone() for a in adapters(model.llm)]
        finally:
            for a in adapters(model.llm):
                a.deciding, a.weights = False, None
    real = inputs.attention_mask.bool()
    assert torch.allclose(ours[real], theirs[real], atol=1e-4)
    for w, theirs_w in zip(weights, their_weights):
        assert torch.allclose(w, theirs_w, atol=1e-5)
        assert torch.allclose(w[media], w[media][:1].expand(sum(media), -1))  # one choice per kind of row
        assert not torch.allclose(w[media][0], w[[not m for m in media]][0])  # media ≠ text only
        assert torch.allclose(w.sum(-1), torch.ones(len(examples)))


def test_routing_happens_once_per_generate_and_batches_agree(moma, monkeypatch):
    model = _perturbed(moma)
    examples, features = _batch(model)
    calls = []
    real = MixtureOfModalityAdapter.route
    monkeypatch.setattr(MixtureOfModalityAdapter, "route", lambda self, z: calls.append(z.shape) or real(self, z))
    batched = model.generate(examples, features, max_new_tokens=6)
    layers = model.llm.config.num_hidden_layers
    assert calls == [torch.Size([2, model.llm.config.hidden_size])] * layers  # one decision pass, new tokens reuse it
    assert batched == [model.generate([e], features, max_new_tokens=6)[0] for e in examples]  # left padding is fine
    assert all(a.weights is None for a in adapters(model.llm))  # nothing left behind after the call


def test_an_llm_run_outside_routing_is_refused(moma):
    examples, features = _batch(moma)
    inputs = moma.build_inputs(examples, features)
    with pytest.raises(RuntimeError, match="MoMA.routing"):
        _logits(moma.llm, inputs)


# ---- training, saving, loading ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tiny_zoo):
    return {"moma": _train(_model("lavin", "moma"), 25, 3e-3), "full": _train(_model("linear", "full"), 25, 3e-4)}


@pytest.mark.parametrize("adapter", ["moma", "full"])
def test_a_few_steps_lower_the_loss(trained, adapter):
    _, losses = trained[adapter]
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses


def test_training_moves_the_moma_routers_apart(trained):
    model, _ = trained["moma"]
    assert any(a.up[0].weight.abs().sum() > 0 and a.up[1].weight.abs().sum() > 0 for a in adapters(model.llm))
    examples, _ = _batch(model)
    with torch.no_grad(), model.routing(examples):
        w = adapters(model.llm)[0].weights
    assert not torch.allclose(w[0], w[1])  # an image row and a text-only row take different mixtures


@pytest.mark.parametrize("adapter", ["moma", "full"])
def test_save_and_from_pretrained_give_the_same_answers(trained, adapter, tmp_path):
    model, _ = trained[adapter]
    examples, features = _batch(model)
    model.save_pretrained(tmp_path / "ckpt")
    loaded = ModaVerseLite.from_pretrained(tmp_path / "ckpt")
    assert loaded.config.adapter == adapter
    before, after = model.generate(examples, features, 12), loaded.generate(examples, features, 12)
    assert before == after
    inputs = model.build_inputs(examples, features)
    with torch.no_grad(), model.routing(examples), loaded.routing(examples):
        assert torch.equal(_logits(model.llm, inputs), _logits(loaded.llm, inputs))


def _damage_and_mismatch(adapter):
    if adapter == "moma":
        return "adapter/" + MOMA_FILE, lambda w: {k: v for k, v in w.items() if "modality_embedding" not in k}
    return "llm.safetensors", lambda w: {**w, "model.norm.weight": torch.ones(3)}


@pytest.mark.parametrize("adapter", ["moma", "full"])
def test_a_damaged_or_mismatched_adapter_file_is_a_checkpoint_error(trained, adapter, tmp_path):
    from safetensors.torch import load_file, save_file

    model, _ = trained[adapter]
    name, mismatch = _damage_and_mismatch(adapter)
    damaged = model.save_pretrained(tmp_path / "damaged")
    file = damaged / name
    file.write_bytes(file.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=name.split("/")[-1] + ".*not a readable safetensors"):
        ModaVerseLite.from_pretrained(damaged)
    other = model.save_pretrained(tmp_path / "other")
    file = other / name
    save_file(mismatch(load_file(file)), file, metadata=_metadata(file))
    with pytest.raises(CheckpointError, match=name.split("/")[-1] + ".*does not fit"):
        ModaVerseLite.from_pretrained(other)
    (other / name).unlink()
    with pytest.raises(CheckpointError, match=name.split("/")[-1] + " is missing"):
        ModaVerseLite.from_pretrained(other)


def _metadata(file):
    from safetensors import safe_open

    with safe_open(file, framework="pt") as f:
        return f.metadata()


def test_moma_settings_are_checked_on_load(trained, tmp_path, monkeypatch):
    from modaverse_lite.aligners.moma import MoMASettings

    model, _ = trained["moma"]
    ckpt = model.save_pretrained(tmp_path / "ckpt")
    monkeypatch.setattr(MoMA, "settings", MoMASettings(temperature=5.0))
    with pytest.raises(CheckpointError, match=f"{MOMA_FILE} was trained with adapter settings"):
        ModaVerseLite.from_pretrained(ckpt)


def test_both_adapters_are_registered():
    assert ADAPTERS["moma"] is MoMA and "full" in ADAPTERS and INPUT_SIDES["lavin"].__name__ == "LaVINProjections"
