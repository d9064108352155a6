"""The gpu profile's road on a CPU, with hub-shaped checkpoints (``profiles.HUBSHAPE``, ``zoo/hubshape.py``): the
real configs, tokenizers, chat template and pipeline classes of Qwen 2.5, CLIP, CLAP, sd-turbo, AudioLDM 2 and
text-to-video-ms, random weights. Encode → align_train (grad_accum 2) → save → load → generate → dispatch."""

import math

import pytest
import torch

from modaverse_lite import media, profiles, zoo
from modaverse_lite.dataset import default_dataset
from modaverse_lite.dispatch import Dispatcher, registry_for
from modaverse_lite.evaluate import answer
from modaverse_lite.meta import format_meta
from modaverse_lite.model import EMBEDDING_MULTIPLE, ModaVerseLite, build_model
from modaverse_lite.records import read_records
from modaverse_lite.train import TrainConfig, align_train
from modaverse_lite.zoo import hubshape

HUB = profiles.HUBSHAPE
SETTINGS = dict(eval_items=1, max_new_tokens=6, progress=False, seed=1)  # the profile's steps, lr and grad_accum


@pytest.fixture(scope="module")
def hub_data():
    return default_dataset(HUB, seed=0)


@pytest.fixture(scope="module")
def hub_runs(hub_data, tmp_path_factory):
    """An uninterrupted run, and the same run stopped after its first checkpoint and resumed."""
    root = tmp_path_factory.mktemp("hubshape")
    straight = align_train(TrainConfig.from_profile(HUB, data_dir=hub_data, out_dir=root / "a", **SETTINGS))
    real, calls = ModaVerseLite.loss, []

    def interrupted(self, examples, features, *weight):
        calls.append(1)
        if len(calls) == HUB.train.eval_every * HUB.train.grad_accum + 1:  # just after the first checkpoint
            raise KeyboardInterrupt
        return real(self, examples, features, *weight)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ModaVerseLite, "loss", interrupted)
        with pytest.raises(KeyboardInterrupt):
            align_train(TrainConfig.from_profile(HUB, data_dir=hub_data, out_dir=root / "b", **SETTINGS))
    resumed = align_train(TrainConfig.from_profile(HUB, data_dir=hub_data, out_dir=root / "b", **SETTINGS))
    return straight, resumed, root


def test_the_profile_mirrors_the_gpu_profile_on_hub_shaped_checkpoints():
    assert HUB.train.grad_accum == profiles.GPU.train.grad_accum == 2 and HUB.train.lr == profiles.GPU.train.lr
    assert HUB.audio_seconds == profiles.GPU.audio_seconds == 10.0 and HUB.lora == profiles.GPU.lora
    assert HUB.video_tokens == profiles.GPU.video_tokens
    for role in profiles.CHECKPOINT_FIELDS:
        assert HUB.reference(role)[len("zoo:"):] in zoo.HUBSHAPE_ENTRIES
    assert set(HUB.generator_kwargs) == set(profiles.GPU.generator_kwargs)


def test_the_checkpoints_have_the_hubs_configs_and_layouts():
    from diffusers import DiffusionPipeline
    from transformers import AutoConfig, AutoTokenizer

    qwen = AutoConfig.from_pretrained(zoo.checkpoint(HUB, "llm"))
    assert (qwen.model_type, qwen.hidden_size, qwen.intermediate_size, qwen.num_attention_heads,
            qwen.num_key_value_heads, qwen.vocab_size, qwen.tie_word_embeddings, qwen.rms_norm_eps,
            qwen.bos_token_id, qwen.eos_token_id) == ("qwen2", 896, 4864, 14, 2, 151_936, True, 1e-6, 151_643, 151_645)
    assert qwen.rope_parameters["rope_theta"] == 1e6 and qwen.num_hidden_layers == 2
    tok = AutoTokenizer.from_pretrained(zoo.checkpoint(HUB, "llm"))
    assert type(tok).__name__ == "Qwen2Tokenizer" and len(tok) == 151_665
    assert tok.convert_tokens_to_ids(["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|file_sep|>"]) == [
        151_643, 151_644, 151_645, 151_664]
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    assert tok.chat_template == hubshape.QWEN_CHAT_TEMPLATE
    clip = AutoConfig.from_pretrained(zoo.checkpoint(HUB, "image_encoder"))
    assert (clip.vision_config.hidden_size, clip.vision_config.patch_size, clip.vision_config.image_size,
            clip.text_config.hidden_size, clip.text_config.vocab_size, clip.projection_dim) == (768, 32, 224, 512,
                                                                                                49_408, 512)
    clap = AutoConfig.from_pretrained(zoo.checkpoint(HUB, "audio_encoder"))
    assert (clap.audio_config.num_mel_bins, clap.audio_config.enable_fusion, clap.audio_config.hidden_size,
            clap.text_config.hidden_size, clap.projection_dim) == (64, False, 768, 768, 512)
    classes = {role: DiffusionPipeline.load_config(zoo.checkpoint(HUB, role))
               for role in ("text_to_image", "text_to_audio", "text_to_video")}
    assert classes["text_to_image"]["_class_name"] == "StableDiffusionPipeline"
    assert classes["text_to_image"]["unet"] == ["diffusers", "UNet2DConditionModel"]
    assert classes["text_to_audio"]["_class_name"] == "AudioLDM2Pipeline"
    assert classes["text_to_audio"]["language_model"] == ["transformers", "GPT2Model"]  # as on the hub
    assert classes["text_to_video"]["_class_name"] == "TextToVideoSDPipeline"
    assert classes["text_to_video"]["unet"] == ["diffusers", "UNet3DConditionModel"]


def test_the_embedding_table_keeps_qwens_151936_rows(hub_runs):
    """Qwen's table has room for the two media tokens: it must not shrink to the tokenizer's 151,667."""
    fresh = build_model(HUB, seed=0)
    rows = fresh.llm.get_input_embeddings().weight.shape[0]
    assert rows == hubshape.QWEN_VOCAB and len(fresh.tokenizer) == 151_667
    assert fresh.media_ids == [151_665, 151_666]
    loaded = ModaVerseLite.from_pretrained(hub_runs[0].checkpoint)
    assert loaded.llm.get_input_embeddings().weight.shape[0] == hubshape.QWEN_VOCAB


def test_a_table_that_must_grow_grows_to_a_multiple_of_64(tiny_zoo):
    model = build_model("tiny", seed=0)
    rows = model.llm.get_input_embeddings().weight.shape[0]
    assert rows % EMBEDDING_MULTIPLE == 0 and len(model.tokenizer) <= rows < len(model.tokenizer) + 64
    again = build_model("tiny", seed=5)  # the padding rows do not depend on the seed: from_pretrained rebuilds them
    pad = slice(len(model.tokenizer), rows)
    assert torch.equal(model.llm.get_input_embeddings().weight[pad], again.llm.get_input_embeddings().weight[pad])


def test_the_chat_template_formats_every_example(hub_data):
    model = build_model(HUB, seed=0)
    record = next(r for r in read_records(hub_data) if r.split == "train" and r.inputs)
    example = model.examples([record], [(record.inputs[0], 0)])[0]
    decode = model.tokenizer.decode
    assert decode(example.head) == ("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
                                    "assistant.<|im_end|>\n<|im_start|>user\n")
    assert decode(example.tail) == record.instruction + "<|im_end|>\n<|im_start|>assistant\n"
    assert example.target[-1] == 151_645 and decode(example.target[:-1]) == record.response()


def _cosine(lr: float, warmup: int, steps: int) -> list[float]:
    return [lr * k / warmup if k < warmup else lr * 0.5 * (1 + math.cos(math.pi * (k - warmup) / (steps - warmup)))
            for k in range(steps)]


def test_the_schedule_warms_up_decays_and_resumes(hub_runs):
    straight, resumed, _ = hub_runs
    t = HUB.train
    assert straight.steps == t.steps and straight.lrs == pytest.approx(_cosine(t.lr, t.warmup_steps, t.steps))
    assert straight.lrs[t.warmup_steps] == pytest.approx(t.lr)  # warm-up ends at the peak
    assert straight.lrs[-1] < 0.15 * t.lr  # the last of 6 steps runs at 0.146 of the peak; the run ends at 0
    assert resumed.lrs == pytest.approx(straight.lrs[t.eval_every:], rel=1e-6)
    assert [loss for _, loss in resumed.history] == pytest.approx([loss for _, loss in straight.history], rel=1e-4)
    assert all(math.isfinite(loss) for _, loss in straight.history)


def test_saved_loaded_generated_and_dispatched(hub_runs, hub_data, tmp_path):
    straight = hub_runs[0]
    loaded = ModaVerseLite.from_pretrained(straight.checkpoint)
    records = [r for r in read_records(hub_data) if r.split == "val"][:3]
    replies = answer(loaded, records, hub_data, HUB, max_new_tokens=6)
    assert replies == answer(straight.model, records, hub_data, HUB, max_new_tokens=6)  # loaded = trained
    assert len(replies) == 3 and all(isinstance(text, str) for text in replies)
    dispatcher = Dispatcher(registry_for(HUB), tmp_path)
    requests = {"image": "a red circle", "audio": "a high sine tone", "video": "a blue square moving up"}
    for modality, prompt in requests.items():
        [out] = dispatcher(format_meta(modality, prompt))
        assert out.ok and out.path.suffix == {"image": ".png", "audio": ".wav", "video": ".mp4"}[modality], out
        assert out.generator == f"diffusers:{zoo.checkpoint(HUB, f'text_to_{modality}')}"
    [image] = tmp_path.glob("image-*.png")
    assert media.load_image(image).shape[:2] == (64, 64)
    [sound] = tmp_path.glob("audio-*.wav")
    assert media.load_audio(sound, sample_rate=16_000).shape[0] >= 15_000  # 1 s at AudioLDM 2's 16 kHz
    [clip] = tmp_path.glob("video-*.mp4")
    assert media.load_video(clip, frames=4).shape[0] == 4


def test_nextgpt_latent_side_reads_the_hub_pipelines_own_text_encoders(hub_data):
    """Notebook 05 on the gpu profile: the latent targets come from sd-turbo's, AudioLDM 2's and text-to-video-ms's
    own text encoders (their real widths), the model trains a step on Qwen's shape and decodes an answer."""
    from modaverse_lite.encode import record_features
    from modaverse_lite.latent import Conditioning, build_latent_model, world_captions

    conditioning = Conditioning(HUB)
    widths = {m: conditioning.pipeline(m).text_encoder.config for m in ("image", "video")}
    for m in ("image", "video"):
        assert conditioning.shapes(m)["prompt_embeds"][1] == widths[m].hidden_size
    audio = conditioning.pipeline("audio")
    assert conditioning.shapes("audio") == {
        "prompt_embeds": conditioning.shapes("audio")["prompt_embeds"],
        "generated_prompt_embeds": (8, audio.language_model.config.n_embd)}
    assert conditioning.shapes("audio")["prompt_embeds"][1] == audio.text_encoder_2.config.d_model
    model = build_latent_model(HUB, seed=0, conditioning=conditioning)
    records = [r for r in read_records(hub_data) if r.split == "train" and r.target.modality != "text"][:3]
    features, rows = record_features(records, hub_data, HUB, progress=False)
    loss = model.loss(model.examples(records, rows), features)
    loss.backward()
    assert math.isfinite(loss.item())
    assert all(q.grad is not None for q in model.outputs[records[0].target.modality].parameters())
    decoded = model.decode(model.examples(records, rows, with_targets=False), features, max_new_tokens=6)
    assert len(decoded) == 3 and all(d.modality is None or d.caption in world_captions(d.modality) for d in decoded)
