"""Pretraining the tiny profile's encoders and LLM on the synthetic world, the way the real ones were on the web.

Real transformers classes (``CLIPModel``, ``ClapModel``, ``Qwen2ForCausalLM``) with tiny configs:

* ``clip`` — contrastive image–text pretraining on world images ("a red circle") and on single video frames
  captioned with where the shape is ("a red circle at the top left"): without the second kind, the encoder would
  learn to ignore position, and motion is nothing but position over time.
* ``clap`` — contrastive audio–text pretraining on world tones, each captioned in full ("a high square tone") and
  by one attribute at a time ("a high tone", "a square tone"; see ``tone_captions``).
* ``llm`` — a causal LM trained briefly on world text and on repeat-after-me lines.

A recipe (``RECIPES``) holds every number that decides an entry's weights; one seed decides every random choice,
so the same recipe gives byte-identical weights. Each builder writes a folder in hub layout (``save_pretrained``).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .. import world
from .text import caption_corpus, copy_corpus, train_tokenizer, world_corpus

RECIPES: dict[str, dict] = {
    "clip": dict(seed=0, images=2400, clips=300, steps=800, batch=128, lr=2e-3, image_size=64, patch=8,
                 width=64, layers=2, heads=4, text_width=64, text_layers=2, dim=64, tokens=600),
    "clap": dict(seed=0, tones=1200, steps=300, batch=96, lr=2e-3, mels=32, spec=32, hop=640, fft=1024, width=32,
                 dim=64, text_width=64, text_layers=2, tokens=600),
    "llm": dict(seed=0, steps=2000, copies=6000, batch=32, lr=3e-3, width=128, layers=2, heads=4, kv_heads=2,
                tokens=1000, max_len=48),
}


def pooled(out) -> torch.Tensor:
    """The embedding tensor of a ``get_*_features`` call (transformers ≥ 5 wraps it in an output object)."""
    return out if isinstance(out, torch.Tensor) else out.pooler_output


# ---- contrastive pretraining (CLIP and CLAP alike) -----------------------------------------------------------
def _contrastive_loss(media: torch.Tensor, text: torch.Tensor, labels: torch.Tensor, scale: torch.Tensor):
    """CLIP's symmetric loss over the batch's distinct captions (several media may share one caption)."""
    media, text = F.normalize(media, dim=-1), F.normalize(text, dim=-1)
    logits = scale.exp().clamp(max=100) * media @ text.T  # [media, distinct captions]
    positives = F.one_hot(labels, text.shape[0]).float()
    to_text = F.cross_entropy(logits, labels)
    to_media = -(positives.T * logits.T.log_softmax(-1)).sum(-1) / positives.sum(0)
    return (to_text + to_media.mean()) / 2


def _optimiser(model, recipe: dict):
    """AdamW with a one-cycle schedule over the recipe's steps: the pretraining of every zoo model."""
    opt = torch.optim.AdamW(model.parameters(), lr=recipe["lr"], weight_decay=0.01)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe["lr"], total_steps=recipe["steps"],
                                                    pct_start=0.1)


def _update(loss, opt, sched, bar) -> None:
    """One optimiser step, and the loss on the progress bar."""
    opt.zero_grad()
    loss.backward()
    opt.step()
    sched.step()
    bar.set_postfix(loss=f"{loss.item():.3f}")


def _pretrain(model, media_inputs: dict, captions: list[str], tokenizer, recipe: dict, media_fn, text_fn, desc):
    """Contrastive training loop shared by CLIP and CLAP: media_fn/text_fn map a batch to embeddings."""
    distinct = sorted(set(captions))
    index = {c: i for i, c in enumerate(distinct)}
    labels_all = torch.tensor([index[c] for c in captions])
    text_inputs = tokenizer(distinct, padding=True, return_tensors="pt")
    g = torch.Generator().manual_seed(recipe["seed"])
    opt, sched = _optimiser(model, recipe)
    n = len(captions)
    model.train()
    for _ in (bar := tqdm(range(recipe["steps"]), desc=desc, leave=False)):
        idx = torch.randperm(n, generator=g)[: recipe["batch"]]
        used, labels = torch.unique(labels_all[idx], return_inverse=True)
        media = media_fn({k: v[idx] for k, v in media_inputs.items()})
        text = text_fn({k: v[used] for k, v in text_inputs.items()})
        scale = model.logit_scale if hasattr(model, "logit_scale") else model.logit_scale_a  # CLAP names it _a
        loss = _contrastive_loss(media, text, labels, scale)
        _update(loss, opt, sched, bar)
    model.eval()


def _text_tower(tokenizer, r: dict, positions: int, **extra) -> dict:
    """The text tower's config, alike in CLIP and CLAP: a small transformer over the world tokenizer."""
    return dict(vocab_size=len(tokenizer), hidden_size=r["text_width"], intermediate_size=2 * r["text_width"],
                num_hidden_layers=r["text_layers"], num_attention_heads=4, max_position_embeddings=positions,
                pad_token_id=0, bos_token_id=2, eos_token_id=1, **extra)


# ---- CLIP ---------------------------------------------------------------------------------------------------
def build_clip(out: Path, r: dict) -> None:
    """A tiny ``CLIPModel`` pretrained on world images and captioned video frames, saved at ``out``."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    torch.manual_seed(r["seed"])
    tokenizer = train_tokenizer(caption_corpus(), r["tokens"])
    config = CLIPConfig(
        text_config=_text_tower(tokenizer, r, positions=32),
        vision_config=dict(image_size=r["image_size"], patch_size=r["patch"], hidden_size=r["width"],
                           intermediate_size=2 * r["width"], num_hidden_layers=r["layers"],
                           num_attention_heads=r["heads"]),
        projection_dim=r["dim"])
    model = CLIPModel(config)
    processor = CLIPImageProcessor(size={"shortest_edge": r["image_size"]},
                                   crop_size={"height": r["image_size"], "width": r["image_size"]})
    images = world.generate("image", r["images"], seed=r["seed"], split="all")
    clips = world.generate("video", r["clips"], seed=r["seed"], split="all")
    pixels = [s.data for s in images] + [frame for c in clips for frame in c.data]
    captions = [s.caption for s in images] + [fc for c in clips for fc in c.frame_captions]
    media = {"pixel_values": processor(images=pixels, return_tensors="pt")["pixel_values"]}
    _pretrain(model, media, captions, tokenizer, r, lambda b: pooled(model.get_image_features(**b)),
              lambda b: pooled(model.get_text_features(**b)), "pretrain CLIP")
    model.save_pretrained(out)
    processor.save_pretrained(out)
    tokenizer.save_pretrained(out)


# ---- CLAP ---------------------------------------------------------------------------------------------------
def _clap_feature_extractor(r: dict):
    from transformers import ClapFeatureExtractor

    return ClapFeatureExtractor(feature_size=r["mels"], sampling_rate=world.SAMPLE_RATE, hop_length=r["hop"],
                                max_length_s=int(world.AUDIO_SECONDS), fft_window_size=r["fft"], padding="repeatpad",
                                truncation="rand_trunc", frequency_min=50, frequency_max=8000)


def tone_captions(attributes: dict[str, str]) -> list[str]:
    """One caption per attribute of a tone: ``{"pitch": "low", "timbre": "sine"}`` → ``["a low tone", "a sine tone"]``.

    CLAP learns from these beside the full caption, so each pitch and each timbre gets a direction of its own, and
    an LLM aligned on some pitch × timbre pairs can name the others (measurements: docs/NOTES.md).
    """
    return [f"a {attributes[name]} tone" for name in world.ATTRIBUTES["audio"]]


def build_clap(out: Path, r: dict) -> None:
    """A tiny ``ClapModel`` pretrained on world tones with full and one-attribute captions, saved at ``out``."""
    from transformers import ClapConfig, ClapModel

    torch.manual_seed(r["seed"])
    tokenizer = train_tokenizer(caption_corpus(), r["tokens"])
    config = ClapConfig(
        text_config=_text_tower(tokenizer, r, positions=40, projection_dim=r["dim"]),
        audio_config=dict(spec_size=r["spec"], num_mel_bins=r["mels"], window_size=4, depths=[1, 1],
                          num_attention_heads=[2, 4], patch_embeds_hidden_size=r["width"], hidden_size=2 * r["width"],
                          patch_size=4, patch_stride=[4, 4], projection_dim=r["dim"], num_hidden_layers=2),
        projection_dim=r["dim"])
    model = ClapModel(config)
    fe = _clap_feature_extractor(r)
    tones = world.generate("audio", r["tones"], seed=r["seed"], split="all")
    feats = fe([s.data for s in tones], sampling_rate=world.SAMPLE_RATE, return_tensors="pt")["input_features"]
    partial = [(i, text) for i, s in enumerate(tones) for text in tone_captions(s.attributes)]
    media = {"input_features": torch.cat([feats, feats[[i for i, _ in partial]]])}
    _pretrain(model, media, [s.caption for s in tones] + [text for _, text in partial], tokenizer, r,
              lambda b: pooled(model.get_audio_features(**b)), lambda b: pooled(model.get_text_features(**b)),
              "pretrain CLAP")
    model.save_pretrained(out)
    fe.save_pretrained(out)
    tokenizer.save_pretrained(out)


# ---- the LLM ------------------------------------------------------------------------------------------------
def build_llm(out: Path, r: dict) -> None:
    """A tiny ``Qwen2ForCausalLM`` trained on world text and repeat-after-me lines, saved at ``out``."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(r["seed"])
    tokenizer = train_tokenizer(world_corpus(), r["tokens"])
    corpus = world_corpus() + copy_corpus(r["copies"], r["seed"])
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=r["width"], intermediate_size=2 * r["width"],
                         num_hidden_layers=r["layers"], num_attention_heads=r["heads"],
                         num_key_value_heads=r["kv_heads"], max_position_embeddings=256, tie_word_embeddings=True,
                         pad_token_id=0, bos_token_id=2, eos_token_id=1)
    model = Qwen2ForCausalLM(config)
    ids = tokenizer(corpus, padding="max_length", truncation=True, max_length=r["max_len"], return_tensors="pt")
    labels = ids["input_ids"].masked_fill(ids["attention_mask"] == 0, -100)
    g = torch.Generator().manual_seed(r["seed"])
    opt, sched = _optimiser(model, r)
    model.train()
    for _ in (bar := tqdm(range(r["steps"]), desc="pretrain LM", leave=False)):
        idx = torch.randperm(len(corpus), generator=g)[: r["batch"]]
        width = int(ids["attention_mask"][idx].sum(1).max())
        loss = model(input_ids=ids["input_ids"][idx, :width], attention_mask=ids["attention_mask"][idx, :width],
                     labels=labels[idx, :width]).loss
        _update(loss, opt, sched, bar)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
