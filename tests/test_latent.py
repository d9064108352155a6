"""NExT-GPT's output side (latent.py): signal tokens with trainable rows, the generators' own text encoders as
targets, NExT-GPT's loss, decoding by the nearest caption, and a conditioning the real pipelines accept."""

import pytest
import torch

from modaverse_lite import latent
from modaverse_lite.encode import record_features
from modaverse_lite.errors import DatasetError
from modaverse_lite.latent import Conditioning, LatentModaVerse, build_latent_model, signal_tokens, world_captions
from modaverse_lite.model import MEDIA_END, MEDIA_START, build_model
from modaverse_lite.records import read_records
from modaverse_lite.schedules import run_schedule, three_stages

MEDIA = ("image", "audio", "video")


@pytest.fixture(scope="module")
def conditioning(tiny_zoo):
    return Conditioning("tiny")


@pytest.fixture(scope="module")
def model(conditioning):
    return build_latent_model("tiny", seed=0, conditioning=conditioning)


@pytest.fixture(scope="module")
def batch(model, world_data):
    records = [r for r in read_records(world_data) if r.split == "train"][:400]
    features, rows = record_features(records, world_data, "tiny", progress=False)
    return records, rows, features


def test_signal_tokens_are_new_words_whose_rows_train(model):
    vocab = model.tokenizer.get_vocab()
    for m in MEDIA:
        assert all(t in vocab for t in signal_tokens(m)), m
        assert len(model.signal_ids[m]) == latent.SIGNALS[m][1]
    rows = model.tokenizer.convert_tokens_to_ids([MEDIA_START, MEDIA_END, *LatentModaVerse.extra_tokens])
    trained = [mod.token_indices["default"] for mod in model.llm.modules() if hasattr(mod, "token_indices")]
    assert trained and all(sorted(ix) == sorted(rows) for ix in trained)  # peft's trainable token rows


def test_the_meta_response_model_gets_no_signal_tokens(tiny_zoo):
    plain = build_model("tiny", seed=0)
    assert "[IMG0]" not in plain.tokenizer.get_vocab()
    assert not hasattr(plain, "outputs")


def test_targets_are_what_each_pipeline_own_text_encoder_gives(conditioning):
    caption = world_captions("image")[3]
    pipe = conditioning.pipeline("image")
    ids = pipe.tokenizer([caption], padding="max_length", max_length=pipe.tokenizer.model_max_length,
                         truncation=True, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = pipe.text_encoder(ids)[0]
    got = conditioning("image", [caption])["prompt_embeds"]
    torch.testing.assert_close(got, expected)
    audio = conditioning("audio", [world_captions("audio")[0]])
    assert set(audio) == {"prompt_embeds", "generated_prompt_embeds"}  # AudioLDM 2 reads both
    assert conditioning.shapes("audio")["generated_prompt_embeds"][0] == 8  # the vectors its GPT-2 writes


@pytest.mark.parametrize("modality", MEDIA)
def test_a_conditioning_drives_the_real_pipeline_without_a_prompt(conditioning, modality):
    pipe = conditioning.pipeline(modality)
    cond = conditioning(modality, [world_captions(modality)[0]])
    extra = {"num_frames": 2} if modality == "video" else {}
    out = pipe(**Conditioning.pipeline_kwargs(cond), num_inference_steps=1, output_type="np", **extra)
    data = out.audios if modality == "audio" else out.frames if modality == "video" else out.images
    assert len(data) == 1 and torch.isfinite(torch.as_tensor(data[0])).all()


def test_latent_distance_is_the_mean_euclidean_distance_per_position():
    a = {"x": torch.tensor([[[0.0, 0.0], [3.0, 4.0]]])}
    b = {"x": torch.tensor([[[0.0, 1.0], [0.0, 0.0]]])}
    assert latent.latent_distance(a, b).tolist() == [pytest.approx((1.0 + 5.0) / 2)]


def test_the_loss_is_cross_entropy_plus_the_latent_distance(model, batch):
    records, rows, features = batch
    examples = model.examples(records[:24], rows[:24])
    latent_rows = [i for i, ex in enumerate(examples) if ex.output]
    assert latent_rows and len(latent_rows) < len(examples)  # the batch mixes media and text answers
    with torch.no_grad():
        total = model.loss(examples, features, 3.0)
        inputs, hidden = model.hidden_states(examples, features)
        ce = model.token_loss(inputs, hidden, examples, 3.0)
        distances = []
        for i in latent_rows:
            ex = examples[i]
            predicted = model._project(ex.output, inputs.token_ids[[i]], hidden[[i]])
            distances.append(latent.latent_distance(predicted, model.conditioning(ex.output, [ex.caption])))
        by_hand = ce + torch.cat(distances).mean()
    torch.testing.assert_close(total, by_hand)
    text_only = [examples[i] for i in range(len(examples)) if i not in latent_rows]
    with torch.no_grad():
        inputs, hidden = model.hidden_states(text_only, features)
        torch.testing.assert_close(model.loss(text_only, features), model.token_loss(inputs, hidden, text_only))


def test_media_answers_are_signal_tokens_and_text_stays_text(model, batch):
    records, rows, _ = batch
    for record, ex in zip(records[:60], model.examples(records[:60], rows[:60])):
        answer = model.tokenizer.decode(ex.target)
        if record.target.modality == "text":
            assert ex.output is None and "Modality: [TEXT]" in answer
        else:
            assert ex.output == record.target.modality and ex.caption == record.target.prompt
            assert all(t in answer for t in signal_tokens(record.target.modality))


def test_decoding_reads_the_nearest_world_caption(model, batch, monkeypatch):
    records, rows, features = batch
    examples = model.examples(records[:3], rows[:3], with_targets=False)
    wanted = world_captions("audio")[5]
    target = model.conditioning("audio", [wanted])
    ids = torch.tensor([model.signal_ids["audio"] + [model.tokenizer.eos_token_id]] * 3)
    monkeypatch.setattr(model, "_generate_ids", lambda *a, **k: ids)
    monkeypatch.setattr(model, "_project", lambda m, token_ids, hidden: {
        k: v.expand(len(token_ids), -1, -1) + 0.01 for k, v in target.items()})
    decoded = model.decode(examples, features)
    assert [d.modality for d in decoded] == ["audio"] * 3 and {d.caption for d in decoded} == {wanted}
    assert model.generate(examples, features)[0] == f"Modality: [AUDIO] Prompt: {wanted}"


def test_a_caption_the_world_cannot_give_is_refused_by_name(model):
    with pytest.raises(DatasetError, match="a plaid unicorn"):
        model._targets("image", ["a plaid unicorn"], "cpu")


def test_the_decoding_stage_learns_to_reach_the_conditioning(conditioning, batch):
    records, rows, features = batch
    model = build_latent_model("tiny", seed=0, conditioning=conditioning)
    stages = three_stages("latent", steps=1, caption_steps=1, decoding_steps=60)[1:2]
    result = run_schedule(model, stages, records, rows, features, lr=3e-3, batch_size=16, warmup_steps=3)
    losses = [loss for _, _, loss in result.history]
    assert sum(losses[-10:]) / 10 < 0.7 * sum(losses[:10]) / 10, losses[::10]
