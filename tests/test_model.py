import pytest
import torch

from modaverse_lite.aligners import Projection
from modaverse_lite.aligners.linear import mean_and_motion
from modaverse_lite.model import MEDIA_END, MEDIA_START, build_model
from modaverse_lite.train import drop_tokens


def test_projection_shapes_and_order():
    image = Projection(64, 128)
    assert image(torch.randn(5, 64)).shape == (5, 1, 128)
    sound = Projection(64, 128, tokens=3)  # one vector → several tokens, still one linear layer
    assert sound(torch.randn(5, 64)).shape == (5, 3, 128) and isinstance(sound.linear, torch.nn.Linear)
    video = Projection(64, 128, tokens=4, frames=8)
    clip = torch.randn(2, 8, 64)
    out = video(clip)
    assert out.shape == (2, 4, 128)
    assert not torch.allclose(out, video(clip.flip(1)))  # the order of frames matters: motion survives
    with pytest.raises(ValueError, match="8 video frames cannot be cut into 3"):
        Projection(64, 128, tokens=3, frames=8)


def test_a_clip_is_read_as_its_mean_frame_and_its_motion():
    clip = torch.randn(3, 8, 64)
    mean, motion = mean_and_motion(clip)
    assert torch.allclose(mean, clip.mean(1)) and torch.allclose(motion.sum(1), torch.zeros(3, 64), atol=1e-5)
    assert torch.allclose(motion.pow(2).sum(-1).mean(-1), torch.ones(3))  # unit size, whatever the encoder's scale
    small = mean_and_motion(clip.mean(1, keepdim=True) + 0.01 * (clip - clip.mean(1, keepdim=True)))[1]
    assert torch.allclose(small, motion, atol=1e-5)  # a small motion is as legible as a large one
    assert torch.allclose(mean_and_motion(clip.flip(1))[1], motion.flip(1))
    still = mean_and_motion(clip[:, :1].expand(-1, 8, -1))[1]  # no motion: zeros, not NaNs
    assert torch.isfinite(still).all() and still.abs().max() < 1e-3
    one_token = Projection(64, 128, tokens=1, frames=8)
    assert one_token.linear.in_features == 64 * 9 and one_token(clip).shape == (3, 1, 128)


@pytest.fixture(scope="module")
def model(tiny_zoo):
    return build_model("tiny", seed=0)


def test_media_tokens_are_added_and_only_the_right_parts_train(model):
    tok = model.tokenizer
    assert tok.convert_tokens_to_ids(MEDIA_START) != tok.unk_token_id
    assert tok(f"{MEDIA_START}{MEDIA_END}", add_special_tokens=False)["input_ids"] == list(model.media_ids)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "projections" in n or "token_adapter" in n for n in trainable), trainable
    assert any("q_proj.lora_A" in n for n in trainable) and any("token_adapter" in n for n in trainable)
    assert not any(p.requires_grad for n, p in model.named_parameters() if "lora_" not in n and "projections" not in n
                   and "token_adapter" not in n)


def test_only_the_meta_response_is_in_the_loss(model):
    features = {"video": torch.randn(3, 8, model.feature_dims["video"]),
                "image": torch.randn(1, model.feature_dims["image"])}
    examples = [model.tokenize("Describe this video.", "video", 2, "Modality: [TEXT] Prompt: a red circle moving up"),
                model.tokenize("Draw a red circle.", None, -1, "Modality: [IMAGE] Prompt: a red circle"),
                model.tokenize("What is this?", "image", 0, "Modality: [TEXT] Prompt: a blue square")]
    inputs = model.build_inputs(examples, features, left_pad=False)
    mask, positions, labels = inputs.attention_mask, inputs.position_ids, inputs.labels
    assert (labels != -100).sum().item() == sum(len(e.target) for e in examples)
    for row, ex in zip(labels, examples):
        assert row[row != -100].tolist() == ex.target
    media_len = len(examples[0].head) + 2 + model.video_tokens + len(examples[0].tail)
    assert mask[0].sum().item() == media_len + len(examples[0].target)
    assert positions[1, : mask[1].sum()].tolist() == list(range(mask[1].sum().item()))
    loss = model.loss(examples, features)
    loss.backward()
    assert model.projections["video"].linear.weight.grad is not None


def test_the_modality_tag_can_weigh_more_in_the_loss(model):
    features = {"image": torch.randn(2, model.feature_dims["image"])}
    examples = [model.tokenize("Draw a red circle.", None, -1, "Modality: [IMAGE] Prompt: a red circle"),
                model.tokenize("What is this?", "image", 1, "Modality: [TEXT] Prompt: a blue square and more")]
    tok = model.tokenizer
    for ex in examples:  # Example.tag: the target's leading ids that spell "Modality: [X]"
        assert ex.tag > 0 and tok.decode(ex.target[:ex.tag]).strip() in ("Modality: [IMAGE]", "Modality: [TEXT]")
        assert "Prompt" not in tok.decode(ex.target[:ex.tag])
    with torch.no_grad():
        plain, heavy = model.loss(examples, features), model.loss(examples, features, tag_weight=3.0)
        inputs = model.build_inputs(examples, features)
        logits = model.llm(inputs_embeds=inputs.inputs_embeds, attention_mask=inputs.attention_mask,
                           position_ids=inputs.position_ids).logits[:, :-1]
        losses = torch.nn.functional.cross_entropy(logits.transpose(1, 2), inputs.labels[:, 1:], reduction="none")
    weights, per_token = [], []
    for row, ex in enumerate(examples):  # by hand: each row's target positions, the first `tag` of them weighted
        where = (inputs.labels[row, 1:] != -100).nonzero().flatten()
        per_token += losses[row, where].tolist()
        weights += [3.0] * ex.tag + [1.0] * (len(where) - ex.tag)
    assert plain.item() == pytest.approx(sum(per_token) / len(per_token), rel=1e-5)
    assert heavy.item() == pytest.approx(sum(w * x for w, x in zip(weights, per_token)) / sum(weights), rel=1e-5)
    assert heavy.item() != pytest.approx(plain.item(), rel=1e-3)


def test_token_dropout_leaves_out_only_ids_of_the_request_the_answer_does_not_repeat(model):
    tok = model.tokenizer
    ex = model.tokenize("Let me hear what a red circle sounds like.", None, -1, "Modality: [AUDIO] Prompt: a red tone")
    assert tok.decode(ex.tail[:ex.ask]) == " Let me hear what a red circle sounds like."  # Example.ask
    frame, answer = ex.tail[ex.ask:], set(ex.target)
    words = ex.tail[:ex.ask]
    assert any(i in answer for i in words) and any(i not in answer for i in words)
    assert drop_tokens([ex], 0.0) == [ex]
    torch.manual_seed(0)
    dropped = drop_tokens([ex] * 50, 0.3)
    torch.manual_seed(0)
    assert drop_tokens([ex] * 50, 0.3) == dropped  # the caller's seed decides: a resumed run drops the same ids
    free = [i for i in words if i not in answer]
    kept = [sum(i not in answer for i in d.tail[:len(d.tail) - len(frame)]) for d in dropped]
    assert 0.55 < sum(kept) / (50 * len(free)) < 0.85  # about 70 % of the ids that may go stay
    for d in dropped:  # the frame, the target and the ids the answer repeats stay; the kept ids keep their order
        assert (d.head, d.modality, d.row, d.target, d.tag) == (ex.head, ex.modality, ex.row, ex.target, ex.tag)
        assert d.tail[len(d.tail) - len(frame):] == frame
        left, it = d.tail[:len(d.tail) - len(frame)], iter(words)
        assert all(i in it for i in left)
        assert [i for i in left if i in answer] == [i for i in words if i in answer]
    assert drop_tokens([ex], 1.0)[0].tail == [i for i in words if i in answer] + frame


def test_batched_generation_equals_one_at_a_time(model):
    features = {"image": torch.randn(4, model.feature_dims["image"]),
                "audio": torch.randn(2, model.feature_dims["audio"])}
    examples = [model.tokenize("Describe this image.", "image", 3), model.tokenize("Play a low sine tone."),
                model.tokenize("What is this sound?", "audio", 1), model.tokenize("Hi")]
    batched = model.generate(examples, features, max_new_tokens=12)
    single = [model.generate([e], features, max_new_tokens=12)[0] for e in examples]
    assert batched == single


def test_parameter_counts_add_up(model):
    counts = model.parameter_counts()
    parts = sum(v for k, v in counts.items() if k != "total")
    assert parts == counts["total"] == sum(p.numel() for p in model.parameters())


def test_media_tokens_setting_gives_an_image_several_slots(tiny_zoo):
    from modaverse_lite.profiles import TINY

    model = build_model(TINY.with_(media_tokens=3), seed=0)
    features = {"image": torch.randn(2, model.feature_dims["image"])}
    examples = [model.tokenize("Describe this image.", "image", 1, "Modality: [TEXT] Prompt: a red circle")]
    inputs = model.build_inputs(examples, features, left_pad=False)
    embeds, mask = inputs.inputs_embeds, inputs.attention_mask
    start = len(examples[0].head) + 1  # after <Media>
    projected = model.projections["image"](features["image"][1:2])[0]
    assert torch.allclose(embeds[0, start:start + 3], projected)
    assert mask[0].sum().item() == len(examples[0].head) + 2 + 3 + len(examples[0].tail) + len(examples[0].target)
