"""The perceiver input side (*resampler* family: Flamingo's Perceiver Resampler, BLIP-2's Q-Former).

A linear projection sees one pooled vector; a resampler sees the encoder's whole **token sequence** (an image's
patches, a clip's frames × patches, a sound's time-frequency patches) and reads from it a fixed number of **learned
queries**. Each block lets the queries cross-attend to the tokens (as in Flamingo, the keys and values are the
tokens *and* the queries themselves), then a feed-forward layer; a linear layer maps each query to one LLM input
embedding. However long the sequence, the LLM gets ``N`` tokens::

    tokens [B, L, D] ─ + learned position, LayerNorm ─┐
    queries [N, D] ───▶ (cross-attention ─▶ FFN) × blocks ─▶ linear ─▶ [B, N, hidden]

One resampler per modality (Flamingo has one per vision encoder), at the encoder's width ``D``, with
``media_tokens`` queries for an image or a sound and ``video_tokens`` for a clip: the same LLM-token budget as the
linear projection. The learned positions tell the queries which patch, and which frame, a token came from: without
them attention is blind to order, and a clip's direction of motion is lost. BLIP-2's Q-Former is larger (a BERT
whose queries also attend to text) and is pre-trained in two stages; at this scale it is this same idea.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..encode import token_count


class CrossAttentionBlock(nn.Module):
    """Pre-norm: queries ← queries + attention(queries, [tokens; queries]); queries ← queries + FFN(queries)."""

    def __init__(self, dim: int, heads: int = 4):
        super().__init__()
        self.norm_queries, self.norm_tokens, self.norm_ff = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, queries: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        q = self.norm_queries(queries)
        keys = torch.cat([self.norm_tokens(tokens), q], dim=1)
        queries = queries + self.attention(q, keys, keys, need_weights=False)[0]
        return queries + self.ff(self.norm_ff(queries))


class Resampler(nn.Module):
    """``[B, length, dim]`` tokens → ``[B, queries, hidden]`` LLM embeddings, through ``blocks`` cross-attentions."""

    def __init__(self, dim: int, length: int, queries: int, hidden: int, blocks: int = 2, heads: int = 4):
        super().__init__()
        self.length = length
        self.positions = nn.Parameter(torch.randn(length, dim) * 0.02)
        self.queries = nn.Parameter(torch.randn(queries, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)
        self.blocks = nn.ModuleList(CrossAttentionBlock(dim, heads) for _ in range(blocks))
        self.out = nn.Linear(dim, hidden)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.dim() != 3 or tokens.shape[1] != self.length:
            raise ValueError(f"the perceiver reads token sequences [B, {self.length}, D], got {tuple(tokens.shape)}: "
                             "encode with kind='tokens' (ModelConfig.feature_kind)")
        tokens = self.norm(tokens + self.positions)
        queries = self.queries.expand(tokens.shape[0], -1, -1)
        for block in self.blocks:
            queries = block(queries, tokens)
        return self.out(queries)


class Perceiver(nn.ModuleDict):
    """One ``Resampler`` per modality, keyed by modality name (``self["video"]``). Reads ``kind="tokens"``."""

    features = "tokens"

    def __init__(self, feature_dims: dict[str, int], hidden: int, media_tokens: int = 1, video_tokens: int = 4,
                 video_frames: int = 8, blocks: int = 2, heads: int = 4, **context):
        super().__init__({m: Resampler(d, token_count(m, video_frames), video_tokens if m == "video" else media_tokens,
                                       hidden, blocks, heads)
                          for m, d in feature_dims.items()})

    def tokens(self, modality: str) -> int:
        return self[modality].queries.shape[0]

    def forward(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        return self[modality](features)
