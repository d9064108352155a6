"""The aligned model: a linear projection per modality + media tokens + a LoRA-tuned LLM.

ModaVerse's input side, in one picture::

    User: <Media> [p(e)] </Media> Draw what this sound looks like.
    Assistant: Modality: [IMAGE] Prompt: a red circle</s>
                  ▲                └─────── the only tokens in the loss ───────┘
              p = linear projection of the frozen embedding e (a video: several ordered tokens)

Nothing maps the LLM's *outputs* back into a generator's feature space: the answer is text (a meta-response),
and a text-to-X generator reads it. That is the "I/O alignment at the level of natural language".

What trains: the projections, LoRA adapters on the attention (peft), and the rows of the two new tokens
``<Media>`` and ``</Media>`` (peft's ``trainable_token_indices``; with tied embeddings these are also their output
rows). Everything else stays frozen.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from .profiles import LoraSettings

MEDIA_START, MEDIA_END = "<Media>", "</Media>"
USER, ASSISTANT = "User:", "\nAssistant:"


class Projection(nn.Module):
    """Linear map from an encoder's embedding to ``tokens`` LLM input embeddings.

    An image or a sound is one vector; one linear layer maps it to ``tokens`` embeddings at once (``[B, D] →
    [B, tokens, H]``). A video is one vector per frame: its frames are cut, in order, into ``tokens`` groups
    (8 frames → 4 groups of 2), and each group's concatenated frames are mapped by one linear layer to one token.
    Still linear, still ordered, and a token can carry the change between its frames — the motion — which
    averaging frames would erase.
    """

    def __init__(self, in_dim: int, out_dim: int, tokens: int = 1, frames: int = 1):
        super().__init__()
        if frames % tokens and frames > 1:
            raise ValueError(f"{frames} video frames cannot be cut into {tokens} equal groups")
        self.tokens, self.frames = tokens, frames
        if frames == 1:  # one vector → `tokens` embeddings
            self.linear = nn.Linear(in_dim, out_dim * tokens)
        else:  # `frames` vectors → `tokens` groups → one embedding each
            self.linear = nn.Linear(in_dim * (frames // tokens), out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if x.dim() == 2:  # [B, D] → [B, tokens·H] → [B, tokens, H]
            return self.linear(x).reshape(b, self.tokens, -1)
        return self.linear(x.reshape(b, self.tokens, -1))  # [B, T, D] → [B, tokens, group·D] → [B, tokens, H]


@dataclass
class Example:
    """One instruction, tokenised once: ids before the media, the media (modality, row in its feature table),
    ids after it, and the target meta-response ids (empty at inference)."""

    head: list[int]
    modality: str | None
    row: int
    tail: list[int]
    target: list[int]


class ModaVerseLite(nn.Module):
    """Projections + the PEFT-wrapped LLM. ``loss`` for training, ``generate`` for inference."""

    def __init__(self, llm, tokenizer, feature_dims: dict[str, int], video_tokens: int = 4, video_frames: int = 8,
                 lora: LoraSettings | None = None, add_tokens: bool = True, media_tokens: int = 1):
        super().__init__()
        from peft import LoraConfig, get_peft_model

        lora = lora or LoraSettings()

        if add_tokens:  # a fresh model: add <Media>, </Media> and grow the embedding table
            tokenizer.add_special_tokens({"additional_special_tokens": [MEDIA_START, MEDIA_END]})
            llm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.tokenizer = tokenizer
        self.media_ids = tokenizer.convert_tokens_to_ids([MEDIA_START, MEDIA_END])
        config = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=list(lora.target_modules), task_type="CAUSAL_LM",
                            trainable_token_indices={"embed_tokens": list(self.media_ids)})
        with warnings.catch_warnings():  # peft reads transformers' deprecated `is_gradient_checkpointing`
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.llm = get_peft_model(llm, config)
        hidden = llm.get_input_embeddings().weight.shape[1]
        self.projections = nn.ModuleDict({
            m: Projection(d, hidden, *((video_tokens, video_frames) if m == "video" else (media_tokens, 1)))
            for m, d in feature_dims.items()})
        self.feature_dims = dict(feature_dims)
        self.video_tokens, self.video_frames, self.media_tokens = video_tokens, video_frames, media_tokens

    # ---- text → example ------------------------------------------------------------------------------------
    def tokenize(self, instruction: str, modality: str | None = None, row: int = -1,
                 response: str | None = None) -> Example:
        """Tokenise one instruction (and its target meta-response) once, ahead of training."""
        def ids(text: str) -> list[int]:
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]

        target = ids(" " + response) + [self.tokenizer.eos_token_id] if response is not None else []
        return Example(ids(USER), modality, row, ids(" " + instruction + ASSISTANT), target)

    # ---- examples → input embeddings ------------------------------------------------------------------------
    def _batch(self, examples: list[Example], features: dict[str, torch.Tensor], left_pad: bool):
        """Padded ``inputs_embeds``, ``attention_mask``, ``position_ids`` and ``labels`` (prompt masked to -100).

        One embedding lookup for every text token of the batch, one projection call per modality; the projected
        media tokens then fill the slots between ``<Media>`` and ``</Media>``.
        """
        slot = -1  # where a media token goes
        rows, prompt_lens = [], []
        for ex in examples:
            media = [self.media_ids[0], *[slot] * self.projections[ex.modality].tokens, self.media_ids[1]] \
                if ex.modality is not None else []
            prompt = ex.head + media + ex.tail
            rows.append(prompt + ex.target)
            prompt_lens.append(len(prompt))
        width, device = max(len(r) for r in rows), next(self.parameters()).device
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(rows), width, dtype=torch.long)
        labels = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, (row, prompt_len) in enumerate(zip(rows, prompt_lens)):
            start = width - len(row) if left_pad else 0
            ids[i, start:start + len(row)] = torch.tensor(row)
            mask[i, start:start + len(row)] = 1
            labels[i, start + prompt_len:start + len(row)] = ids[i, start + prompt_len:start + len(row)]
        ids, mask, labels = ids.to(device), mask.to(device), labels.to(device)
        slots = ids == slot
        embeds = self.llm.get_input_embeddings()(ids.masked_fill(slots, self.tokenizer.pad_token_id))
        media = torch.zeros_like(embeds)
        for modality in {ex.modality for ex in examples} - {None}:
            which = [i for i, ex in enumerate(examples) if ex.modality == modality]
            table = features[modality][[examples[i].row for i in which]].to(device)
            projected = self.projections[modality](table).to(embeds.dtype)  # [n, tokens, H]
            media[which] = media[which].masked_scatter(slots[which].unsqueeze(-1), projected)
        embeds = torch.where(slots.unsqueeze(-1), media, embeds)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        return embeds, mask, positions, labels

    def loss(self, examples: list[Example], features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean next-token loss over the target meta-responses of a batch.

        The same loss as ``llm(..., labels=labels).loss``, but the output layer and softmax run only at the
        positions that predict a target token (about a third of them), not at every prompt and padding position.
        """
        embeds, mask, positions, labels = self._batch(examples, features, left_pad=False)
        causal_lm = self.llm.get_base_model()  # the LLM with the LoRA layers in it
        hidden = causal_lm.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions,
                                 use_cache=False).last_hidden_state
        targets = labels[:, 1:]
        scored = targets != -100  # position t predicts token t + 1
        logits = causal_lm.lm_head(hidden[:, :-1][scored])
        return F.cross_entropy(logits.float(), targets[scored])

    @torch.no_grad()
    def generate(self, examples: list[Example], features: dict[str, torch.Tensor],
                 max_new_tokens: int = 24) -> list[str]:
        """Greedy meta-responses for a batch of examples (their targets, if any, are ignored)."""
        prompts = [Example(ex.head, ex.modality, ex.row, ex.tail, []) for ex in examples]
        embeds, mask, _, _ = self._batch(prompts, features, left_pad=True)
        out = self.llm.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                                do_sample=False, pad_token_id=self.tokenizer.pad_token_id,
                                eos_token_id=self.tokenizer.eos_token_id)
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def parameter_counts(self) -> dict[str, int]:
        """Trainable and total parameters, by part — the table notebook 02 shows."""
        def count(params, trainable_only):
            return sum(p.numel() for p in params if p.requires_grad or not trainable_only)

        llm_params = list(self.llm.parameters())
        proj_params = list(self.projections.parameters())
        return {"projections (trainable)": count(proj_params, True),
                "LLM LoRA + new-token rows (trainable)": count(llm_params, True),
                "LLM frozen": count(llm_params, False) - count(llm_params, True),
                "total": count(proj_params + llm_params, False)}
