"""The tiny zoo's text-to-X generators: real diffusers pipelines, built here, saved, loaded back by path and run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from modaverse_lite import world
from modaverse_lite.errors import CheckpointError
from modaverse_lite.generators import load_pipeline
from modaverse_lite.zoo import diffusers as zd
from modaverse_lite.zoo import text as zt

BUILDERS = {"image": zd.build_text_to_image, "audio": zd.build_text_to_audio, "video": zd.build_text_to_video}
CLASSES = {"image": "StableDiffusionPipeline", "audio": "AudioLDM2Pipeline", "video": "AnimateDiffPipeline"}


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Models this small run faster on one thread than on two that wait for each other."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_generators")
    return {name: build(root / name) for name, build in BUILDERS.items()}


@pytest.fixture(scope="session")
def pipes(built):
    loaded = {name: load_pipeline(path) for name, path in built.items()}  # as the generators load them
    for pipe in loaded.values():
        pipe.set_progress_bar_config(disable=True)
    return loaded


def _files(folder: Path) -> dict[str, Path]:
    return {str(p.relative_to(folder)): p for p in sorted(folder.rglob("*")) if p.is_file()}


def _assert_same_checkpoint(a: Path, b: Path) -> None:
    files_a, files_b = _files(a), _files(b)
    assert files_a.keys() == files_b.keys()
    for name, path in files_a.items():
        if name.endswith(".safetensors"):
            ta, tb = load_file(path), load_file(files_b[name])
            assert ta.keys() == tb.keys(), name
            for key in ta:
                assert torch.equal(ta[key], tb[key]), f"{name}: {key}"
        else:
            assert path.read_bytes() == files_b[name].read_bytes(), name


@pytest.mark.parametrize("name", list(BUILDERS))
def test_loads_back_as_the_real_pipeline_class(pipes, built, name):
    assert type(pipes[name]).__name__ == CLASSES[name]
    assert (built[name] / "model_index.json").is_file()
    size = sum(p.stat().st_size for p in _files(built[name]).values())
    assert size < 5_000_000, f"{name} checkpoint is {size / 1e6:.1f} MB"


def test_text_to_image_runs(pipes):
    generator = torch.Generator().manual_seed(0)
    images = pipes["image"]("a red circle", num_inference_steps=2, generator=generator, output_type="np").images
    assert images.shape == (1, world.IMAGE_SIZE, world.IMAGE_SIZE, 3)
    assert images.dtype == np.float32
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    assert images.std() > 0  # not a blank canvas
    again = pipes["image"]("a red circle", num_inference_steps=2, generator=torch.Generator().manual_seed(0),
                           output_type="np").images
    np.testing.assert_array_equal(images, again)  # the seeded generator decides everything


def test_text_to_audio_runs(pipes):
    pipe = pipes["audio"]
    generator = torch.Generator().manual_seed(0)
    audios = pipe("a high square tone", num_inference_steps=2, generator=generator).audios
    rate = pipe.vocoder.config.sampling_rate
    assert rate == world.SAMPLE_RATE
    assert audios.shape == (1, rate)  # one second by default
    assert audios.dtype == np.float32
    assert np.isfinite(audios).all() and audios.std() > 1e-4  # audible noise, not silence
    half = pipe("a low sine tone", num_inference_steps=2, audio_length_in_s=0.5).audios
    assert half.shape == (1, rate // 2)


def test_audioldm2_is_laid_out_as_on_the_hub_and_loaded_so_that_it_can_generate(built, pipes):
    """cvssp/audioldm2 declares a GPT2Model language model, which cannot generate under transformers 5: the zoo
    copies that layout, so only the generators' loader (GPT2LMHeadModel) makes the pipeline run."""
    from diffusers import DiffusionPipeline
    from transformers import GPT2LMHeadModel, GPT2Model

    index = json.loads((built["audio"] / "model_index.json").read_text())
    assert index["language_model"] == ["transformers", "GPT2Model"]
    plain = DiffusionPipeline.from_pretrained(built["audio"])
    assert type(plain.language_model) is GPT2Model
    with pytest.raises(AttributeError, match="_update_model_kwargs_for_generation"):
        plain("a low sine tone", num_inference_steps=1)
    assert isinstance(pipes["audio"].language_model, GPT2LMHeadModel)


def test_text_to_audio_scores_several_waveforms_with_clap(pipes):
    audios = pipes["audio"]("a mid triangle tone", num_inference_steps=2, num_waveforms_per_prompt=2,
                            generator=torch.Generator().manual_seed(1)).audios
    assert audios.shape == (2, world.SAMPLE_RATE) and np.isfinite(audios).all()


def test_text_to_video_runs(pipes):
    generator = torch.Generator().manual_seed(0)
    frames = pipes["video"]("a blue square moving up", num_inference_steps=2, num_frames=world.VIDEO_FRAMES,
                            generator=generator, output_type="np").frames
    assert frames.shape == (1, world.VIDEO_FRAMES, world.IMAGE_SIZE, world.IMAGE_SIZE, 3)
    assert frames.dtype == np.float32
    assert np.isfinite(frames).all() and frames.min() >= 0 and frames.max() <= 1


@pytest.mark.parametrize("name", list(BUILDERS))
def test_build_is_deterministic(built, tmp_path, name):
    again = BUILDERS[name](tmp_path / name, seed=0)
    _assert_same_checkpoint(built[name], again)


def test_seed_changes_the_weights(built, tmp_path):
    other = zd.build_text_to_image(tmp_path / "image", seed=1)
    a = load_file(built["image"] / "unet" / "diffusion_pytorch_model.safetensors")
    b = load_file(other / "unet" / "diffusion_pytorch_model.safetensors")
    assert any(not torch.equal(a[k], b[k]) for k in a)


def test_rebuild_replaces_the_folder_and_leaves_no_temporaries(tmp_path):
    out = tmp_path / "sd"
    zd.build_text_to_image(out)
    (out / "stale.txt").write_text("from an older build")
    assert zd.build_text_to_image(out) == out
    assert not (out / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["sd"]


def test_failed_save_leaves_no_half_folder_and_keeps_the_old_one(tmp_path, monkeypatch):
    from diffusers import DiffusionPipeline, StableDiffusionPipeline

    good = zd.build_text_to_image(tmp_path / "sd")

    def broken_save(self, save_directory, **kwargs):
        (Path(save_directory) / "model_index.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(StableDiffusionPipeline, "save_pretrained", broken_save)
    with pytest.raises(CheckpointError, match="disk full"):
        zd.build_text_to_image(tmp_path / "fresh")
    with pytest.raises(CheckpointError, match="disk full"):
        zd.build_text_to_image(good)
    assert [p.name for p in tmp_path.iterdir()] == ["sd"]  # nothing half-written, no temporaries
    assert isinstance(DiffusionPipeline.from_pretrained(good), StableDiffusionPipeline)


def test_tokenizers_cover_the_world_without_unknown_tokens():
    corpus = zt.caption_corpus()  # what the pipelines' tokenizers learn from
    # the prompts the pipelines are given: every world caption, and the frame captions of 24 clips
    captions = [world.caption(m, dict(zip(world.ATTRIBUTES[m], combo)))
                for m in world.MODALITIES for combo in world.combinations(m, "all")]
    captions += [c for sample in world.generate("video", 24, seed=0, split="all") for c in sample.frame_captions]
    assert len(captions) > 200 and set(captions) <= set(corpus)
    for tokenizer in (zt.clip_tokenizer(corpus), zt.roberta_tokenizer(corpus), zt.t5_tokenizer(corpus)):
        for line in captions:
            assert tokenizer.unk_token_id not in tokenizer(line, add_special_tokens=False).input_ids, line
            ids = tokenizer(line).input_ids
            assert len(ids) <= zt.MAX_TOKENS
            assert tokenizer.decode(ids, skip_special_tokens=True) == line
        for line in corpus:  # CLIP lowercases and spaces out punctuation, so only captions decode verbatim
            assert tokenizer.unk_token_id not in tokenizer(line, add_special_tokens=False).input_ids, line
            assert len(tokenizer(line).input_ids) <= zt.MAX_TOKENS, line
    t5 = zt.t5_tokenizer(corpus)
    assert len(t5("a red circle moving left").input_ids) == 6  # whole words + </s>


def test_tokenizers_keep_the_special_token_ids_their_models_expect():
    corpus = zt.caption_corpus()  # what the pipelines' tokenizers learn from
    clip, roberta, t5 = zt.clip_tokenizer(corpus), zt.roberta_tokenizer(corpus), zt.t5_tokenizer(corpus)
    assert (type(clip).__name__, clip.bos_token_id, clip.eos_token_id, clip.pad_token_id) == ("CLIPTokenizer", 0, 1, 1)
    assert (type(roberta).__name__, roberta.bos_token_id, roberta.pad_token_id, roberta.eos_token_id,
            roberta.unk_token_id, roberta.mask_token_id) == ("RobertaTokenizer", 0, 1, 2, 3, 4)
    assert (type(t5).__name__, t5.pad_token_id, t5.eos_token_id, t5.unk_token_id) == ("T5Tokenizer", 0, 1, 2)
