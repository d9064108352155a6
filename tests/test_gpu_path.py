"""The gpu profile's code path, checked without a GPU: the choices it makes on a T4 or an A100, and the settings
that a hub checkpoint brings along (fp16 variants, an instruct model's generation config)."""

import math

import pytest
import torch

from modaverse_lite import profiles
from modaverse_lite.errors import TrainingError
from modaverse_lite.evaluate import answer
from modaverse_lite.generators import load_pipeline
from modaverse_lite.model import ModaVerseLite, build_model, checkpoint_info
from modaverse_lite.records import read_records
from modaverse_lite.train import TrainConfig, align_train, mixed_precision


@pytest.mark.parametrize(("cuda", "capability", "expected"), [
    (False, None, "no"),  # a CPU
    (True, (7, 5), "fp16"),  # a T4: bf16 would be emulated
    (True, (8, 0), "bf16"),  # an A100
    (True, (9, 0), "bf16"),  # an H100
])
def test_mixed_precision_follows_the_device_capability(monkeypatch, cuda, capability, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)  # true on a T4
    assert mixed_precision("auto") == expected
    assert mixed_precision("fp16") == "fp16"  # an explicit setting is kept


def test_half_precision_hub_pipelines_ask_for_the_fp16_variant(monkeypatch):
    from diffusers import DiffusionPipeline

    calls = []

    def from_pretrained(cls, ref, **kwargs):
        calls.append((ref, kwargs.get("variant")))
        if kwargs.get("variant") and ref == "org/no-variant":
            raise OSError("no file named diffusion_pytorch_model.fp16.safetensors")
        return "pipe"

    monkeypatch.setattr(DiffusionPipeline, "load_config", classmethod(lambda cls, ref, **kw: {"_class_name": "X"}))
    monkeypatch.setattr(DiffusionPipeline, "from_pretrained", classmethod(from_pretrained))
    assert load_pipeline("org/model", torch.float16) == "pipe" and calls == [("org/model", "fp16")]
    calls.clear()
    assert load_pipeline("org/no-variant", torch.float16) == "pipe"
    assert calls == [("org/no-variant", "fp16"), ("org/no-variant", None)]  # falls back to the full files
    calls.clear()
    load_pipeline("org/model", torch.float32)
    assert calls == [("org/model", None)]


def test_generation_is_greedy_whatever_the_llms_generation_config_says(short_run, world_data):
    model = ModaVerseLite.from_pretrained(short_run.checkpoint)
    records = [r for r in read_records(world_data) if r.split == "val"][:8]
    plain = answer(model, records, world_data, "tiny")
    assert sum(a.count(":") >= 2 for a in plain) >= 4  # "Modality: … Prompt: …" repeats a token on purpose
    config = model.llm.get_base_model().generation_config  # what an instruct checkpoint ships with
    config.do_sample, config.temperature, config.top_k, config.repetition_penalty = True, 0.7, 20, 50.0
    assert answer(model, records, world_data, "tiny") == plain


def test_the_gpu_profile_judges_whole_clips():
    gpu = profiles.GPU
    clip = gpu.generator_kwargs["text_to_audio"]["audio_length_in_s"]
    assert gpu.audio_seconds >= clip, "AudioLDM 2's clips would be judged on their first second only"


def test_an_instruct_llms_chat_template_is_used_and_the_plain_format_otherwise(tiny_zoo):
    model = build_model("tiny", seed=0)
    decode = model.tokenizer.decode
    plain = model.tokenize("Describe this image.", "image", 0, "Modality: [TEXT] Prompt: a red circle")
    assert decode(plain.head) == "User:" and decode(plain.tail).endswith("\nAssistant:")
    model.tokenizer.chat_template = ("{% for m in messages %}<turn>{{ m['role'] }}: {{ m['content'] }}</turn>"
                                     "{% endfor %}{% if add_generation_prompt %}<turn>assistant:{% endif %}")
    chat = model.tokenize("Describe this image.", "image", 0, "Modality: [TEXT] Prompt: a red circle")
    assert decode(chat.head) == "<turn>user: "  # the media open the user's turn
    assert decode(chat.tail) == "Describe this image.</turn><turn>assistant:"
    assert decode(chat.target) == "Modality: [TEXT] Prompt: a red circle" + model.tokenizer.eos_token
    inputs = model.build_inputs([chat], {"image": torch.randn(1, model.feature_dims["image"])})
    assert (inputs.token_ids[0] < 0).sum() == model.projections.tokens("image")  # the media sit inside the turn


def _cosine(lr: float, warmup: int, steps: int) -> list[float]:
    """transformers' cosine schedule with linear warm-up, one value per optimizer step."""
    return [lr * k / warmup if k < warmup else lr * 0.5 * (1 + math.cos(math.pi * (k - warmup) / (steps - warmup)))
            for k in range(steps)]


def test_the_schedule_counts_optimizer_steps_with_gradient_accumulation(world_data, tmp_path, kill_training_at):
    """grad_accum 2 (the gpu profile's): warm-up ends at the peak, the run ends near 0, a resumed run's rates are
    an uninterrupted one's."""
    config = dict(data_dir=world_data, steps=6, warmup_steps=2, grad_accum=2, batch_size=4, lr=1e-3,
                  eval_every=3, eval_items=3, progress=False, seed=2)
    straight = align_train(TrainConfig.from_profile("tiny", out_dir=tmp_path / "a", **config))
    assert straight.lrs == pytest.approx(_cosine(1e-3, 2, 6), rel=1e-6)
    assert straight.lrs[2] == pytest.approx(1e-3) and straight.lrs[-1] < 0.15e-3
    kill_training_at(7)  # after the step-3 checkpoint (6 micro-batches)
    with pytest.raises(KeyboardInterrupt):
        align_train(TrainConfig.from_profile("tiny", out_dir=tmp_path / "b", **config))
    resumed = align_train(TrainConfig.from_profile("tiny", out_dir=tmp_path / "b", **config))
    assert resumed.lrs == pytest.approx(straight.lrs[3:], rel=1e-6)
    assert [loss for _, loss in resumed.history] == pytest.approx([loss for _, loss in straight.history], rel=1e-4)


def test_a_non_finite_loss_stops_the_run_with_a_clear_message(world_data, tmp_path, monkeypatch):
    real, calls = ModaVerseLite.loss, []

    def overflowing(self, examples, features, *weight):
        calls.append(1)
        loss = real(self, examples, features, *weight)
        return loss * float("nan") if len(calls) == 3 else loss

    monkeypatch.setattr(ModaVerseLite, "loss", overflowing)
    config = TrainConfig.from_profile("tiny", data_dir=world_data, out_dir=tmp_path / "run", steps=5, eval_every=2,
                                      eval_items=3, batch_size=4, progress=False)
    with pytest.raises(TrainingError, match=r"step 3: the training loss is nan.*last good checkpoint"):
        align_train(config)
    assert checkpoint_info(tmp_path / "run")["step"] == 2  # the checkpoint before it is kept
