"""Tiny text-to-X generators: the real diffusers pipelines, built here with tiny, randomly initialised parts.

The GPU profile loads hub checkpoints with ``DiffusionPipeline.from_pretrained("stabilityai/sd-turbo")``. The tiny
profile runs the very same pipeline classes, so the dispatcher's code path is exercised end to end on a CPU in
seconds. No network here is trained: the images, sounds and clips are structured noise, but they have the right type,
shape and range, and every step between a prompt and a file on disk is the real one.

Each builder

1. trains tiny tokenizers on the world's captions (``text.py``: no hub access, even tokenizers are made here),
2. seeds torch and constructs every model from a small config (same seed, byte-identical weights),
3. assembles the pipeline and ``save_pretrained``-s it through ``files.atomic_dir``, so a crash never leaves half
   a checkpoint behind and a failed rebuild keeps the last good one.

The result loads back with the generic ``DiffusionPipeline.from_pretrained(out_dir)``, exactly like a hub id.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import world
from ..errors import CheckpointError
from ..files import atomic_dir
from .text import MAX_TOKENS, caption_corpus, clip_tokenizer, roberta_tokenizer, t5_tokenizer


# ---- parts ----------------------------------------------------------------------------------------------------------
def _clip_text_encoder(tokenizer, hidden: int = 32):
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                            num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
                            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                            pad_token_id=tokenizer.pad_token_id, projection_dim=hidden)
    return CLIPTextModel(config)


def _vae(channels: int = 3):
    """A 2-level VAE: 64x64 pixels <-> 4x32x32 latents (the real SD VAE has 4 levels and 8x smaller latents)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=channels, out_channels=channels, latent_channels=4,
                         block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
                         down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                         sample_size=world.IMAGE_SIZE)


def _sd_parts(tokenizer) -> dict:
    """Stable Diffusion's parts, tiny: CLIP text encoder, a 2-level VAE and a 2-level UNet over 32x32 latents."""
    from diffusers import UNet2DConditionModel

    text_encoder = _clip_text_encoder(tokenizer)
    vae = _vae()
    unet = UNet2DConditionModel(sample_size=world.IMAGE_SIZE // 2, in_channels=4, out_channels=4,
                                block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
                                cross_attention_dim=text_encoder.config.hidden_size, attention_head_dim=8)
    return {"tokenizer": tokenizer, "text_encoder": text_encoder, "vae": vae, "unet": unet}


# ---- saving ---------------------------------------------------------------------------------------------------------
def _save(pipe, out_dir: Path) -> Path:
    """``save_pretrained`` into a fresh folder that replaces ``out_dir`` only once it is complete."""
    out_dir = Path(out_dir)
    try:
        with atomic_dir(out_dir) as tmp:
            pipe.save_pretrained(tmp, safe_serialization=True)
    except OSError as e:
        raise CheckpointError(f"could not write the tiny pipeline to {out_dir}: {e}; check that the folder is "
                              "writable and the disk is not full") from e
    return out_dir


# ---- the three builders ---------------------------------------------------------------------------------------------
def build_text_to_image(out_dir: Path, seed: int = 0) -> Path:
    """A tiny ``StableDiffusionPipeline`` (64x64 RGB images), saved in hub layout at ``out_dir``."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    tokenizer = clip_tokenizer(caption_corpus())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts = _sd_parts(tokenizer)
    # sd-turbo's scheduler, with the SD beta schedule
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing", steps_offset=1)
    pipe = StableDiffusionPipeline(**parts, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    return _save(pipe, out_dir)


def build_text_to_audio(out_dir: Path, seed: int = 0) -> Path:
    """A tiny ``AudioLDM2Pipeline`` (1 s of 16 kHz audio by default), saved in hub layout at ``out_dir``.

    AudioLDM 2 reads a prompt twice (CLAP text tower + T5 encoder), projects both into a GPT-2 that "writes" 8
    conditioning vectors, and a UNet denoises a mel spectrogram that a HiFi-GAN vocoder turns into a waveform.
    """
    from diffusers import (
        AudioLDM2Pipeline,
        AudioLDM2ProjectionModel,
        AudioLDM2UNet2DConditionModel,
        DDIMScheduler,
    )
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapTextConfig,
        GPT2Config,
        GPT2Model,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        T5Config,
        T5EncoderModel,
    )

    corpus = caption_corpus()
    tokenizer, tokenizer_2 = roberta_tokenizer(corpus), t5_tokenizer(corpus)
    mel_bins, hop, rate = 32, 160, world.SAMPLE_RATE  # 100 spectrogram frames a second, as in AudioLDM 2
    feature_extractor = ClapFeatureExtractor(feature_size=mel_bins, sampling_rate=rate, hop_length=hop,
                                             max_length_s=1, fft_window_size=512, frequency_min=50,
                                             frequency_max=rate // 2, truncation="rand_trunc")  # an unfused CLAP
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        text_config = ClapTextConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                     num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=MAX_TOKENS + 2,
                                     bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                     pad_token_id=tokenizer.pad_token_id, projection_dim=16)
        audio_config = ClapAudioConfig(spec_size=2 * mel_bins, window_size=4, num_mel_bins=mel_bins, hidden_size=32,
                                       depths=[1, 1], num_attention_heads=[2, 2], num_hidden_layers=2,
                                       intermediate_size=32, projection_dim=16, patch_size=2, patch_stride=2,
                                       patch_embeds_hidden_size=16, enable_fusion=False)
        text_encoder = ClapModel(ClapConfig(text_config=text_config.to_dict(), audio_config=audio_config.to_dict(),
                                            projection_dim=16))
        text_encoder_2 = T5EncoderModel(T5Config(vocab_size=len(tokenizer_2), d_model=32, d_ff=64, d_kv=8,
                                                 num_heads=4, num_layers=2, pad_token_id=tokenizer_2.pad_token_id,
                                                 eos_token_id=tokenizer_2.eos_token_id))
        # GPT-2 only ever reads and writes vectors here; its 2-word vocabulary is never used. A GPT2Model, as on the
        # hub (cvssp/audioldm2): generators.DiffusersGenerator loads it as GPT2LMHeadModel, which can generate
        language_model = GPT2Model(GPT2Config(n_embd=16, n_head=2, n_layer=2, vocab_size=2, n_positions=64,
                                              bos_token_id=0, eos_token_id=1))
        language_model.config.max_new_tokens = 8  # how many vectors GPT-2 "writes" per prompt
        projection_model = AudioLDM2ProjectionModel(text_encoder_dim=16, text_encoder_1_dim=32, langauge_model_dim=16)
        vae = _vae(channels=1)  # a mel spectrogram is a 1-channel image: (1, frames, mel_bins) <-> latents
        # sample_size: 50 latent rows x 2 (VAE) x 160 samples (vocoder hop) = 16 000 samples, 1 s by default
        unet = AudioLDM2UNet2DConditionModel(sample_size=50, in_channels=4, out_channels=4,
                                             block_out_channels=(16, 32), layers_per_block=1, norm_num_groups=8,
                                             down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                             up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
                                             cross_attention_dim=([None, 16, 32], [None, 16, 32]),
                                             attention_head_dim=8)
        vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(model_in_dim=mel_bins, sampling_rate=rate,
                                                        upsample_initial_channel=32, upsample_rates=[5, 4, 2, 2, 2],
                                                        upsample_kernel_sizes=[10, 8, 4, 4, 4],
                                                        resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 3]],
                                                        normalize_before=False, initializer_range=0.2))
    scheduler = DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False)
    pipe = AudioLDM2Pipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                             projection_model=projection_model, language_model=language_model, tokenizer=tokenizer,
                             tokenizer_2=tokenizer_2, feature_extractor=feature_extractor, unet=unet,
                             scheduler=scheduler, vocoder=vocoder)
    return _save(pipe, out_dir)


def build_text_to_video(out_dir: Path, seed: int = 0) -> Path:
    """A tiny ``AnimateDiffPipeline`` (64x64 frames; ask for ``num_frames=8``), saved in hub layout at ``out_dir``.

    AnimateDiff is Stable Diffusion plus a motion adapter: temporal attention layers inserted into the image UNet
    (``UNetMotionModel``), so each frame is an SD image and the frames attend to each other.
    """
    from diffusers import AnimateDiffPipeline, DDIMScheduler, MotionAdapter

    tokenizer = clip_tokenizer(caption_corpus())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        parts = _sd_parts(tokenizer)
        motion_adapter = MotionAdapter(block_out_channels=parts["unet"].config.block_out_channels,
                                       motion_layers_per_block=1, motion_norm_num_groups=8,
                                       motion_num_attention_heads=2, motion_max_seq_length=32)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="linear", clip_sample=False,
                              timestep_spacing="linspace", steps_offset=1)
    pipe = AnimateDiffPipeline(**parts, motion_adapter=motion_adapter, scheduler=scheduler)
    return _save(pipe, out_dir)
