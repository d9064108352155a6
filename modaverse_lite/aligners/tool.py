"""Tool learning (*tool* family: Visual ChatGPT, HuggingGPT): no projection at all — a frozen tool turns the
medium into text, and the LLM reads only text.

**Zero trainable parameters sit on this input side.** The tool is zero-shot retrieval with the frozen encoders'
own text towers (CLIP's for images and video frames, CLAP's for sounds): before training, ``prepare`` embeds every
caption of the training set's media, one **caption bank** per modality; a medium's pooled embedding then picks the
nearest caption in its bank (cosine similarity; a clip: the mean of its frames), and the input side returns the
LLM's own input embeddings of that caption's tokens — exactly what the LLM would read had the user typed the
caption between ``<Media>`` and ``</Media>``. Only the LLM adapter (and the media tokens' rows) train: the LLM
learns to turn a described medium into the asked-for meta-response.

What it cannot do, by construction: name what no training caption says (the ``unseen`` split's new attribute
combinations are not in the bank) or see anything the pooled embedding does not keep (a clip's frame mean carries
no direction of motion). Those are the tool family's limits: the text between the tool and the LLM is a bottleneck.

Captions are written as token ids padded with the tokenizer's pad id to the bank's longest caption (at most
``max_caption_tokens``), so every medium of a modality becomes the same number of LLM tokens. The bank (text
embeddings, token ids, the captions' text as bytes) is saved with the checkpoint in ``projections.safetensors``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..encode import load_encoder


class ToolLearning(nn.Module):
    """A caption bank per modality (buffers, not parameters) and the LLM's embedding lookup. Reads pooled features.

    Context (keyword arguments from ``ModaVerseLite``): ``tokenizer`` (the LLM's) and ``embed_tokens`` (ids → the
    LLM's input embeddings; held as a plain attribute, so the LLM's table is neither a part nor saved here)."""

    features = "pooled"

    def __init__(self, feature_dims: dict[str, int], hidden: int, media_tokens: int = 1, video_tokens: int = 4,
                 video_frames: int = 8, tokenizer=None, embed_tokens=None, max_caption_tokens: int = 16, **context):
        super().__init__()
        self.dims, self.hidden, self.max_caption_tokens = dict(feature_dims), hidden, max_caption_tokens
        self.tokenizer = tokenizer
        object.__setattr__(self, "embed_tokens", embed_tokens)  # never a part of this module, even a Module
        for m, d in feature_dims.items():
            self.register_buffer(f"bank_{m}", torch.zeros(0, d))  # [C, D] text-tower embeddings of the captions
            self.register_buffer(f"ids_{m}", torch.zeros(0, 1, dtype=torch.long))  # [C, L] their LLM token ids
            self.register_buffer(f"text_{m}", torch.zeros(0, 1, dtype=torch.uint8))  # [C, bytes] their text, UTF-8

    # ---- the caption bank -------------------------------------------------------------------------------------
    def prepare(self, records, profile) -> None:
        """Build the caption banks from training ``records``: every distinct caption of an input medium, by
        modality, embedded by that modality's frozen text tower (``encode.Encoder.embed_text``)."""
        if self.tokenizer is None:
            raise ValueError("tool learning needs the LLM's tokenizer (tokenizer=...) to write captions as tokens")
        for m in self.dims:
            captions = sorted({r.captions[m] for r in records if m in r.inputs and r.captions.get(m)})
            if not captions:
                continue
            bank = load_encoder(m, profile).embed_text(captions)
            ids = [self.tokenizer(" " + c, add_special_tokens=False)["input_ids"][:self.max_caption_tokens]
                   for c in captions]
            table = torch.full((len(ids), max(map(len, ids))), self.tokenizer.pad_token_id, dtype=torch.long)
            for i, row in enumerate(ids):
                table[i, :len(row)] = torch.tensor(row)
            raw = [c.encode("utf-8") for c in captions]
            text = torch.zeros(len(raw), max(map(len, raw)), dtype=torch.uint8)
            for i, b in enumerate(raw):
                text[i, :len(b)] = torch.tensor(list(b), dtype=torch.uint8)
            device = getattr(self, f"bank_{m}").device
            setattr(self, f"bank_{m}", bank.to(device))
            setattr(self, f"ids_{m}", table.to(device))
            setattr(self, f"text_{m}", text.to(device))

    def bank(self, modality: str) -> list[str]:
        """The captions this modality's bank holds, in bank order."""
        return [bytes(row[row > 0].tolist()).decode("utf-8") for row in getattr(self, f"text_{modality}").cpu()]

    def _ids(self, modality: str) -> torch.Tensor:
        ids = getattr(self, f"ids_{modality}")
        if ids.shape[0] == 0:
            raise ValueError(f"tool learning has no {modality} captions yet: call prepare(train_records, profile) "
                             "before using it (align_train does)")
        return ids

    # ---- the tool ---------------------------------------------------------------------------------------------
    def retrieve(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        """The bank row of the nearest caption to each medium: ``[B]`` (a clip ``[B, T, D]``: its frame mean)."""
        self._ids(modality)
        x = features.mean(dim=1) if features.dim() == 3 else features
        return (F.normalize(x.float(), dim=-1) @ getattr(self, f"bank_{modality}").T).argmax(dim=-1)

    def captions(self, modality: str, features: torch.Tensor) -> list[str]:
        """What the tool says each medium is (the text the LLM reads)."""
        bank = self.bank(modality)
        return [bank[i] for i in self.retrieve(modality, features).tolist()]

    def tokens(self, modality: str) -> int:
        return self._ids(modality).shape[1]

    def forward(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        if self.embed_tokens is None:
            raise ValueError("tool learning needs the LLM's embedding lookup (embed_tokens=...)")
        ids = self._ids(modality)[self.retrieve(modality, features)]  # [B, L]
        return self.embed_tokens(ids.to(features.device))  # [B, L, hidden]: the LLM's own embeddings of the text

    # ---- the checkpoint: the banks' sizes come from the file ---------------------------------------------------
    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Read the caption banks back. A bank's size is whatever was saved, so buffers are replaced, not copied
        into; anything missing, unexpected or misshapen is a RuntimeError (``from_pretrained``: CheckpointError)."""
        expected = {f"{kind}_{m}" for m in self.dims for kind in ("bank", "ids", "text")}
        missing, unexpected = sorted(expected - set(state_dict)), sorted(set(state_dict) - expected)
        if missing or unexpected:
            raise RuntimeError(f"tool learning's caption banks: missing {missing[:3]}, unexpected {unexpected[:3]}")
        for m, d in self.dims.items():
            bank, ids, text = (state_dict[f"{kind}_{m}"] for kind in ("bank", "ids", "text"))
            if not (bank.dim() == 2 and bank.shape[1] == d and bank.is_floating_point()
                    and ids.dim() == 2 and ids.dtype == torch.long and text.dim() == 2 and text.dtype == torch.uint8
                    and bank.shape[0] == ids.shape[0] == text.shape[0]):
                raise RuntimeError(f"tool learning's {m} caption bank is misshapen: bank {tuple(bank.shape)} (width "
                                   f"{d}), ids {tuple(ids.shape)} {ids.dtype}, text {tuple(text.shape)} {text.dtype}")
            vocab = len(self.tokenizer) if self.tokenizer is not None else None
            if ids.numel() and (ids.min() < 0 or (vocab is not None and ids.max() >= vocab)):
                raise RuntimeError(f"tool learning's {m} caption ids leave the tokenizer's vocabulary")
            device = getattr(self, f"bank_{m}").device
            for kind, value in (("bank", bank.float()), ("ids", ids), ("text", text)):
                setattr(self, f"{kind}_{m}", value.to(device))
        return nn.modules.module._IncompatibleKeys([], [])
