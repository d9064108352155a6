"""Hub-shaped checkpoints: the gpu profile's six models with their real hub configs, random weights, fewer layers.

The ``hubshape`` profile tests the gpu profile's code path on a CPU. Every entry here copies one hub checkpoint's
configuration class, widths that meet other models (hidden sizes, vocabularies, cross-attention widths, special
token ids), processor settings and folder layout — only the depth is cut (and, in the diffusers pipelines, the
internal widths of the UNets, VAEs and vocoder, which nothing outside them sees):

==================  ==========================================  ==============================================
entry               stands in for                               what is cut
==================  ==========================================  ==============================================
``hub-qwen``        ``Qwen/Qwen2.5-0.5B-Instruct``               24 → 2 layers
``hub-clip``        ``openai/clip-vit-base-patch32``             12 → 1 layers per tower
``hub-clap``        ``laion/clap-htsat-unfused``                 text 12 → 1 layers, HTSAT depths 2,2,6,2 → 1,1,1,1
``hub-sd-turbo``    ``stabilityai/sd-turbo``                     text 23 → 1 layers; UNet and VAE widths
``hub-audioldm2``   ``cvssp/audioldm2``                          every tower to 1 layer; UNet, VAE, vocoder widths
``hub-text2video``  ``ali-vilab/text-to-video-ms-1.7b``          text 23 → 1 layers; UNet and VAE widths
==================  ==========================================  ==============================================

Tokenizers are the hub's classes with the hub's special tokens at the hub's ids (Qwen's ``<|im_end|>`` = 151645,
CLIP's ``<|endoftext|>`` = 49407, …) and Qwen 2.5's chat template; their merges are learnt from the world corpus
(``text.py``) and the vocabulary is padded with unreachable filler tokens so the ids line up. ``RECIPE`` holds every
number that sizes a build; one seed decides every weight. Nothing here is trained: these models prove that the
shapes, classes and settings of the real checkpoints go through the code, not that they learn anything.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .diffusers import _save
from .text import _train_bpe, _vocab_and_merges, clip_tokenizer, roberta_tokenizer, t5_tokenizer, world_corpus

RECIPE: dict[str, dict] = {
    "hub-qwen": dict(seed=0, layers=2, bpe_vocab=2000),
    "hub-clip": dict(seed=0, vision_layers=1, text_layers=1),
    "hub-clap": dict(seed=0, text_layers=1, depths=[1, 1, 1, 1]),
    "hub-sd-turbo": dict(seed=0, text_layers=1, unet_channels=[32, 64, 64, 64], vae_channels=[32, 32, 64, 64]),
    "hub-audioldm2": dict(seed=0, layers=1, unet_channels=[32, 64, 64, 96], vae_channels=[32, 32, 64],
                          vocoder_channels=64),
    "hub-text2video": dict(seed=0, text_layers=1, unet_channels=[32, 64, 64, 64], vae_channels=[32, 32, 64, 64]),
}
ENTRIES = tuple(RECIPE)

# ---- the hub's tokenizers ------------------------------------------------------------------------------------------
QWEN_ADDED_AT = 151_643  # the first added token
QWEN_VOCAB = 151_936  # rows of Qwen 2.5's embedding table (the tokenizer has 151,665 tokens; the rest is padding)
QWEN_ADDED = [  # Qwen 2.5's added tokens, from id 151643 on; the first 14 are special
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>"]
QWEN_SPECIAL = 14
QWEN_CHAT_TEMPLATE = (  # Qwen 2.5's template, as in the hub's tokenizer_config.json
    "{%- if tools %}\n    {{- '<|im_start|>system\\n' }}\n    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- messages[0]['content'] }}\n    {%- else %}\n"
    "        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}\n    {%- endif %}\n"
    "    {{- \"\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are "
    "provided with function signatures within <tools></tools> XML tags:\\n<tools>\" }}\n"
    "    {%- for tool in tools %}\n        {{- \"\\n\" }}\n        {{- tool | tojson }}\n    {%- endfor %}\n"
    "    {{- \"\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments "
    "within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\\"name\\\": <function-name>, \\\"arguments\\\": "
    "<args-json-object>}\\n</tool_call><|im_end|>\\n\" }}\n{%- else %}\n"
    "    {%- if messages[0]['role'] == 'system' %}\n"
    "        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n"
    "        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    "<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}\n{%- for message in messages %}\n"
    "    {%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) or (message.role == "
    "\"assistant\" and not message.tool_calls) %}\n"
    "        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}\n"
    "    {%- elif message.role == \"assistant\" %}\n        {{- '<|im_start|>' + message.role }}\n"
    "        {%- if message.content %}\n            {{- '\\n' + message.content }}\n        {%- endif %}\n"
    "        {%- for tool_call in message.tool_calls %}\n            {%- if tool_call.function is defined %}\n"
    "                {%- set tool_call = tool_call.function %}\n            {%- endif %}\n"
    "            {{- '\\n<tool_call>\\n{\"name\": \"' }}\n            {{- tool_call.name }}\n"
    "            {{- '\", \"arguments\": ' }}\n            {{- tool_call.arguments | tojson }}\n"
    "            {{- '}\\n</tool_call>' }}\n        {%- endfor %}\n        {{- '<|im_end|>\\n' }}\n"
    "    {%- elif message.role == \"tool\" %}\n"
    "        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != \"tool\") %}\n"
    "            {{- '<|im_start|>user' }}\n        {%- endif %}\n        {{- '\\n<tool_response>\\n' }}\n"
    "        {{- message.content }}\n        {{- '\\n</tool_response>' }}\n"
    "        {%- if loop.last or (messages[loop.index0 + 1].role != \"tool\") %}\n"
    "            {{- '<|im_end|>\\n' }}\n        {%- endif %}\n    {%- endif %}\n{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n")
CLIP_VOCAB = 49_408  # <|startoftext|> = 49406, <|endoftext|> = 49407
ROBERTA_VOCAB = 50_265  # <s> 0, <pad> 1, </s> 2, <unk> 3, …, <mask> 50264 (CLAP's text tower)
T5_PIECES = 32_000  # Flan-T5: <pad> 0, </s> 1, <unk> 2, …, then 100 <extra_id_N>; the model has 32,128 rows


def _bpe_of(tokenizer) -> tuple[list[str], list[tuple[str, str]]]:
    """A trained BPE tokenizer's tokens (in id order) and merges."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return sorted(model["vocab"], key=model["vocab"].get), merges


def _padded(tokens: list[str], size: int) -> dict[str, int]:
    """``tokens`` numbered in order, then unreachable filler tokens (no merge makes them) up to ``size`` ids."""
    tokens = tokens + [f"<|filler_{i}|>" for i in range(len(tokens), size)]
    return {token: i for i, token in enumerate(tokens)}


def qwen_tokenizer(corpus: list[str], bpe_vocab: int):
    """Qwen 2.5's tokenizer: the Qwen2 byte-level BPE (its pre-tokeniser and NFC), Qwen's added tokens at ids
    151643–151664, ``<|im_end|>`` as eos, ``<|endoftext|>`` as padding, no bos, and the chat template."""
    from tokenizers import pre_tokenizers
    from transformers import Qwen2Tokenizer

    backend = _train_bpe(Qwen2Tokenizer().backend_tokenizer, corpus, bpe_vocab, [])
    vocab, merges = _vocab_and_merges(backend, sorted(pre_tokenizers.ByteLevel.alphabet()))
    tok = Qwen2Tokenizer(vocab=_padded(list(vocab), QWEN_ADDED_AT), merges=merges, unk_token=None,
                         model_max_length=131_072, errors="replace", clean_up_tokenization_spaces=False)
    tok.add_special_tokens({"additional_special_tokens": QWEN_ADDED[1:QWEN_SPECIAL]})
    tok.add_tokens(QWEN_ADDED[QWEN_SPECIAL:])
    tok.eos_token, tok.chat_template = "<|im_end|>", QWEN_CHAT_TEMPLATE
    return tok


def hub_clip_tokenizer(corpus: list[str], pad_token: str = "<|endoftext|>"):
    """CLIP's tokenizer: 49,408 ids, ``<|startoftext|>`` = 49406 and ``<|endoftext|>`` = 49407 at the end, 77
    tokens. OpenAI's CLIP pads with ``<|endoftext|>``; Stable Diffusion 2's OpenCLIP tokenizer pads with ``!``."""
    from transformers import CLIPTokenizer

    special = ["<|startoftext|>", "<|endoftext|>"]
    tokens, merges = _bpe_of(clip_tokenizer(corpus))
    vocab = _padded([t for t in tokens if t not in special], CLIP_VOCAB - len(special))
    vocab.update({token: len(vocab) + i for i, token in enumerate(special)})
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77, pad_token=pad_token)


def hub_roberta_tokenizer(corpus: list[str]):
    """RoBERTa's tokenizer as CLAP (and AudioLDM 2) read it: 50,265 ids, ``<mask>`` last, 512 tokens."""
    from transformers import RobertaTokenizer

    tokens, merges = _bpe_of(roberta_tokenizer(corpus))
    vocab = _padded([t for t in tokens if t != "<mask>"], ROBERTA_VOCAB - 1)
    vocab["<mask>"] = ROBERTA_VOCAB - 1
    return RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=512)


def hub_t5_tokenizer(corpus: list[str]):
    """Flan-T5's tokenizer as AudioLDM 2 reads it: 32,000 unigram pieces and 100 ``<extra_id_N>``, 128 tokens.
    The filler pieces score so low that the world's words never use them."""
    from transformers import T5Tokenizer

    pieces = t5_tokenizer(corpus).backend_tokenizer.to_str()
    pieces = [tuple(p) for p in json.loads(pieces)["model"]["vocab"]]
    pieces += [(f"<filler_{i}>", -1e4) for i in range(len(pieces), T5_PIECES)]
    return T5Tokenizer(vocab=pieces, extra_ids=100, model_max_length=128)


# ---- encoders and the LLM ------------------------------------------------------------------------------------------
def _clap_feature_extractor():
    """laion/clap-htsat-unfused's feature extractor: 64 mel bins of 48 kHz audio, 10 s windows, repeat-padded."""
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(feature_size=64, sampling_rate=48_000, hop_length=480, max_length_s=10,
                                fft_window_size=1024, padding="repeatpad", truncation="rand_trunc",
                                frequency_min=50, frequency_max=14_000, return_attention_mask=False)


def _clap_config(r: dict, tokenizer):
    """laion/clap-htsat-unfused's ClapConfig: a RoBERTa text tower (768 wide) and an HTSAT audio tower (a Swin
    transformer over a 256x256 spectrogram image: 96 → 768 wide over four stages), both projected to 512."""
    from transformers import ClapConfig

    text = dict(vocab_size=len(tokenizer), hidden_size=768, intermediate_size=3072, num_hidden_layers=r["text_layers"],
                num_attention_heads=12, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1, bos_token_id=0,
                eos_token_id=2, projection_dim=512, projection_hidden_act="relu")
    audio = dict(spec_size=256, window_size=8, num_mel_bins=64, patch_embeds_hidden_size=96, hidden_size=768,
                 depths=r["depths"], num_attention_heads=[4, 8, 16, 32], patch_size=4, patch_stride=[4, 4],
                 enable_fusion=False, projection_dim=512, num_classes=527, mlp_ratio=4.0,
                 num_hidden_layers=len(r["depths"]), projection_hidden_act="relu")
    return ClapConfig(text_config=text, audio_config=audio, projection_dim=512, logit_scale_init_value=14.2857)


def build_qwen(out: Path, r: dict) -> None:
    """Qwen/Qwen2.5-0.5B-Instruct's config, tokenizer and generation config, ``layers`` layers, in bf16 (as the
    hub stores it)."""
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = qwen_tokenizer(world_corpus(), r["bpe_vocab"])
    config = Qwen2Config(vocab_size=QWEN_VOCAB, hidden_size=896, intermediate_size=4864,
                         num_hidden_layers=r["layers"], num_attention_heads=14, num_key_value_heads=2,
                         hidden_act="silu", max_position_embeddings=32_768, max_window_layers=21, rms_norm_eps=1e-6,
                         rope_theta=1_000_000.0, sliding_window=32_768, use_sliding_window=False,
                         tie_word_embeddings=True, attention_dropout=0.0, initializer_range=0.02,
                         bos_token_id=151_643, eos_token_id=151_645)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(r["seed"])
        model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(  # the instruct model's sampling settings (model.GREEDY overrides)
        bos_token_id=151_643, pad_token_id=151_643, eos_token_id=[151_645, 151_643], do_sample=True,
        repetition_penalty=1.1, temperature=0.7, top_p=0.8, top_k=20)
    model.to(torch.bfloat16).save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_clip(out: Path, r: dict) -> None:
    """openai/clip-vit-base-patch32: ViT-B/32 (224 px, 32 px patches, 768 wide), a 512-wide text tower, both
    projected to 512; its image processor and tokenizer."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tokenizer = hub_clip_tokenizer(world_corpus())
    config = CLIPConfig(
        text_config=dict(vocab_size=CLIP_VOCAB, hidden_size=512, intermediate_size=2048, num_attention_heads=8,
                         num_hidden_layers=r["text_layers"], max_position_embeddings=77, hidden_act="quick_gelu",
                         projection_dim=512, bos_token_id=0, eos_token_id=2, pad_token_id=1),
        vision_config=dict(image_size=224, patch_size=32, hidden_size=768, intermediate_size=3072,
                           num_attention_heads=12, num_hidden_layers=r["vision_layers"], hidden_act="quick_gelu",
                           projection_dim=512),
        projection_dim=512, logit_scale_init_value=2.6592)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(r["seed"])
        model = CLIPModel(config)
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                   resample=3, do_center_crop=True, do_normalize=True, do_convert_rgb=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)


def build_clap(out: Path, r: dict) -> None:
    """laion/clap-htsat-unfused: ``ClapModel`` with its feature extractor and RoBERTa tokenizer."""
    from transformers import ClapModel

    tokenizer = hub_roberta_tokenizer(world_corpus())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(r["seed"])
        model = ClapModel(_clap_config(r, tokenizer))
    model.save_pretrained(out)
    _clap_feature_extractor().save_pretrained(out)
    tokenizer.save_pretrained(out)


# ---- the diffusers pipelines ---------------------------------------------------------------------------------------
def _openclip_h_text_encoder(layers: int):
    """Stable Diffusion 2's text encoder (OpenCLIP ViT-H/14's text tower as a ``CLIPTextModel``): 1024 wide, so the
    UNets' cross-attention reads 1024-wide states."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(vocab_size=CLIP_VOCAB, hidden_size=1024, intermediate_size=4096,
                                        num_attention_heads=16, num_hidden_layers=layers, max_position_embeddings=77,
                                        hidden_act="gelu", projection_dim=512, bos_token_id=0, eos_token_id=2,
                                        pad_token_id=1))


def _sd_vae(channels: list[int], in_channels: int = 3, latent_channels: int = 4, scaling_factor: float = 0.18215):
    """Stable Diffusion's VAE layout: one level per width, each but the last halving the resolution."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=in_channels, out_channels=in_channels, latent_channels=latent_channels,
                         block_out_channels=channels, layers_per_block=1, norm_num_groups=32,
                         down_block_types=["DownEncoderBlock2D"] * len(channels),
                         up_block_types=["UpDecoderBlock2D"] * len(channels), scaling_factor=scaling_factor)


def build_sd_turbo(out: Path, r: dict) -> None:
    """stabilityai/sd-turbo: a ``StableDiffusionPipeline`` (SD 2.1 layout: OpenCLIP-H text encoder, a 4-level
    UNet with linear-projection cross-attention to 1024-wide states, a 4-level VAE, Euler with trailing timesteps)."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPImageProcessor

    tokenizer = hub_clip_tokenizer(world_corpus(), pad_token="!")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(r["seed"])
        text_encoder = _openclip_h_text_encoder(r["text_layers"])
        unet = UNet2DConditionModel(
            sample_size=64, in_channels=4, out_channels=4, block_out_channels=r["unet_channels"], layers_per_block=1,
            down_block_types=["CrossAttnDownBlock2D"] * 3 + ["DownBlock2D"],
            up_block_types=["UpBlock2D"] + ["CrossAttnUpBlock2D"] * 3, cross_attention_dim=1024,
            attention_head_dim=[max(1, c // 32) for c in r["unet_channels"]], use_linear_projection=True,
            norm_num_groups=32)
        vae = _sd_vae(r["vae_channels"])
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, prediction_type="epsilon", steps_offset=1,
                                       timestep_spacing="trailing", interpolation_type="linear")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=CLIPImageProcessor(),
                                   requires_safety_checker=False)
    _save(pipe, out)


def build_audioldm2(out: Path, r: dict) -> None:
    """cvssp/audioldm2: an ``AudioLDM2Pipeline`` — CLAP's text tower (512) and Flan-T5-large's encoder (1024)
    read the prompt, a projection feeds both to GPT-2 (768, a ``GPT2Model`` as on the hub) that writes 8 vectors,
    a UNet with two cross-attentions (768 and 1024) denoises 8-channel mel latents, a HiFi-GAN makes 16 kHz audio."""
    from diffusers import AudioLDM2Pipeline, AudioLDM2ProjectionModel, AudioLDM2UNet2DConditionModel, DDIMScheduler
    from transformers import (
        ClapModel,
        GPT2Config,
        GPT2Model,
        SpeechT5HifiGan,
        SpeechT5HifiGanConfig,
        T5Config,
        T5EncoderModel,
    )

    corpus = world_corpus()
    tokenizer, tokenizer_2 = hub_roberta_tokenizer(corpus), hub_t5_tokenizer(corpus)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(r["seed"])
        text_encoder = ClapModel(_clap_config({"text_layers": r["layers"], "depths": [1, 1, 1, 1]}, tokenizer))
        text_encoder_2 = T5EncoderModel(T5Config(vocab_size=32_128, d_model=1024, d_ff=2816, d_kv=64, num_heads=16,
                                                 num_layers=r["layers"], feed_forward_proj="gated-gelu",
                                                 tie_word_embeddings=False, pad_token_id=0, eos_token_id=1,
                                                 decoder_start_token_id=0))
        language_model = GPT2Model(GPT2Config(n_embd=768, n_head=12, n_layer=r["layers"], vocab_size=50_257,
                                              n_positions=1024, bos_token_id=50_256, eos_token_id=50_256))
        language_model.config.max_new_tokens = 8  # the vectors GPT-2 writes per prompt
        projection_model = AudioLDM2ProjectionModel(text_encoder_dim=512, text_encoder_1_dim=1024,
                                                    langauge_model_dim=768)
        channels = r["unet_channels"]
        unet = AudioLDM2UNet2DConditionModel(
            sample_size=256, in_channels=8, out_channels=8, block_out_channels=channels, layers_per_block=1,
            down_block_types=["DownBlock2D"] + ["CrossAttnDownBlock2D"] * 3,
            up_block_types=["CrossAttnUpBlock2D"] * 3 + ["UpBlock2D"],
            cross_attention_dim=[[None, 768, 1024]] * len(channels), attention_head_dim=8, norm_num_groups=32)
        vae = _sd_vae(r["vae_channels"], in_channels=1, latent_channels=8, scaling_factor=0.4110932946205139)
        vocoder = SpeechT5HifiGan(SpeechT5HifiGanConfig(
            model_in_dim=64, sampling_rate=16_000, upsample_initial_channel=r["vocoder_channels"],
            upsample_rates=[5, 4, 2, 2, 2], upsample_kernel_sizes=[16, 16, 8, 4, 4], resblock_kernel_sizes=[3, 7, 11],
            resblock_dilation_sizes=[[1, 3, 5]] * 3, normalize_before=False))
    scheduler = DDIMScheduler(beta_start=0.0015, beta_end=0.0195, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                              prediction_type="epsilon")
    pipe = AudioLDM2Pipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                             projection_model=projection_model, language_model=language_model, tokenizer=tokenizer,
                             tokenizer_2=tokenizer_2, feature_extractor=_clap_feature_extractor(), unet=unet,
                             scheduler=scheduler, vocoder=vocoder)
    _save(pipe, out)


def build_text2video(out: Path, r: dict) -> None:
    """ali-vilab/text-to-video-ms-1.7b: a ``TextToVideoSDPipeline`` — SD 2's text encoder and VAE, and a
    ``UNet3DConditionModel`` (spatial and temporal attention, cross-attention to 1024-wide states), DDIM."""
    from diffusers import DDIMScheduler, TextToVideoSDPipeline, UNet3DConditionModel

    tokenizer = hub_clip_tokenizer(world_corpus(), pad_token="!")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(r["seed"])
        text_encoder = _openclip_h_text_encoder(r["text_layers"])
        unet = UNet3DConditionModel(
            sample_size=32, in_channels=4, out_channels=4, block_out_channels=r["unet_channels"], layers_per_block=1,
            down_block_types=["CrossAttnDownBlock3D"] * 3 + ["DownBlock3D"],
            up_block_types=["UpBlock3D"] + ["CrossAttnUpBlock3D"] * 3, cross_attention_dim=1024,
            attention_head_dim=8, norm_num_groups=32)
        vae = _sd_vae(r["vae_channels"])
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False, steps_offset=1,
                              prediction_type="epsilon")
    _save(TextToVideoSDPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                scheduler=scheduler), out)


BUILDERS = {"hub-qwen": build_qwen, "hub-clip": build_clip, "hub-clap": build_clap, "hub-sd-turbo": build_sd_turbo,
            "hub-audioldm2": build_audioldm2, "hub-text2video": build_text2video}  # (out, recipe)
