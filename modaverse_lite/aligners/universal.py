"""OneLLM's universal projection (*universal* family): one projection shared by every modality.

OneLLM (Han et al., 2024) aligns eight modalities to one LLM through a single **universal projection module**: a
mixture of ``K = 3`` experts, each a stack of transformer blocks, shared by all modalities. What stays per modality
is small: an input layer (``clip_proj1``: linear + LayerNorm), learned **query tokens** (OneLLM's
``resample_tokens``, 30 of them), a **router** (an MLP), an output layer (``clip_proj2``: linear + LayerNorm to the
LLM's width) and learned **start / end tags** around the media tokens. Following OneLLM's code
(``model/LLM/onellm.py``, ``encode_image``)::

    x = proj_in[m](tokens)                          # [B, L, W]
    x = cat(queries[m], x)                          # the queries go first: [B, N + L, W]
    w = router[m](x).sigmoid(); w = w / w.sum(-1)   # a soft weight per token and expert, normalised over experts
    y = Σ_k expert_k(x)[:, :N] · w[:, :N, k]        # every expert runs; only the query positions are kept
    out = [start_tag[m], proj_out[m](y), end_tag[m]]  → N + 2 LLM tokens

**What the router does at the query positions.** The router reads each position on its own (an MLP, no attention),
and the weights are kept only at the query positions — whose inputs are the modality's learned queries, the same
for every input. So the mixture over experts depends only on the modality (and the query slot), never on the
image, clip or sound: each modality learns its own fixed blend of the shared experts, and the content reaches the
LLM through the experts' self-attention from the queries to the media tokens. Routing here is *by modality*, not
by content.

Tiny-scale choices, all stated: the experts are ``blocks`` pre-norm ``nn.TransformerEncoderLayer`` (OneLLM: eight
LLaMA blocks each) at width ``W`` (the encoders' width); ``media_tokens`` queries for an image or a sound and
``video_tokens`` for a clip (OneLLM: 30), so the LLM reads two tags more than the linear projection gives it. OneLLM
runs its own CLIP-initialised encoder and adds a learned positional embedding per modality before it; our encoders
are frozen and shared, so a learned positional embedding per modality is added after the input layer (without it
self-attention cannot tell the frames of a clip apart; OneLLM itself averages a video's frames, and loses the
direction of motion). OneLLM's output LayerNorm and tags start at unit size (``torch.rand``), fitting a 7B LLM after
a long pretraining stage; here their gains start at the LLM's own embedding size (``embedding_rms``), so the new
tokens begin at the scale of the words around them.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ..encode import token_count


def expert(width: int, blocks: int, heads: int) -> nn.Sequential:
    """One expert: ``blocks`` pre-norm self-attention blocks (attention over queries and media tokens together)."""
    return nn.Sequential(*[nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, activation="gelu",
                                                      batch_first=True, norm_first=True) for _ in range(blocks)])


class UniversalProjection(nn.Module):
    """Shared experts + per-modality input layer, positions, queries, router, output layer and tags. Reads
    ``kind="tokens"``; gives ``[B, queries + 2, hidden]`` (start tag, one token per query, end tag)."""

    features = "tokens"

    def __init__(self, feature_dims: dict[str, int], hidden: int, media_tokens: int = 1, video_tokens: int = 4,
                 video_frames: int = 8, experts: int = 3, blocks: int = 1, heads: int = 4,
                 embedding_rms: float = 1.0, **context):
        super().__init__()
        width = max(feature_dims.values())
        self.experts = nn.ModuleList(expert(width, blocks, heads) for _ in range(experts))  # shared by all
        self.proj_in = nn.ModuleDict({m: nn.Sequential(nn.Linear(d, width), nn.LayerNorm(width))
                                      for m, d in feature_dims.items()})
        self.positions = nn.ParameterDict({m: nn.Parameter(torch.randn(token_count(m, video_frames), width) * 0.02)
                                           for m in feature_dims})
        self.queries = nn.ParameterDict({m: nn.Parameter(torch.randn(video_tokens if m == "video" else media_tokens,
                                                                     width) * 0.02) for m in feature_dims})
        self.routers = nn.ModuleDict({m: nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(),
                                                       nn.Linear(4 * width, experts)) for m in feature_dims})
        self.proj_out = nn.ModuleDict({m: nn.Sequential(nn.Linear(width, hidden), nn.LayerNorm(hidden))
                                       for m in feature_dims})
        for layer in self.proj_out.values():
            nn.init.constant_(layer[1].weight, embedding_rms)
        self.start_tag = nn.ParameterDict({m: nn.Parameter(torch.rand(1, hidden) * embedding_rms)
                                           for m in feature_dims})
        self.end_tag = nn.ParameterDict({m: nn.Parameter(torch.rand(1, hidden) * embedding_rms) for m in feature_dims})

    def tokens(self, modality: str) -> int:
        return self.queries[modality].shape[0] + 2

    def routing(self, modality: str, sequence: torch.Tensor) -> torch.Tensor:
        """OneLLM's soft router: sigmoid weights per position and expert, normalised over the experts ``[B, L, K]``."""
        weights = self.routers[modality](sequence).sigmoid()
        return weights / weights.sum(dim=-1, keepdim=True)

    def forward(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        positions = self.positions[modality]
        if features.dim() != 3 or features.shape[1] != positions.shape[0]:
            raise ValueError(f"the universal projection reads token sequences [B, {positions.shape[0]}, D], got "
                             f"{tuple(features.shape)}: encode with kind='tokens' (ModelConfig.feature_kind)")
        b, n = features.shape[0], self.queries[modality].shape[0]
        x = self.proj_in[modality](features) + positions
        x = torch.cat([self.queries[modality].expand(b, -1, -1), x], dim=1)
        weights = self.routing(modality, x)[:, :n]  # only the query positions are kept
        y = sum(e(x)[:, :n] * weights[:, :, k, None] for k, e in enumerate(self.experts))
        tags = self.start_tag[modality].expand(b, 1, -1), self.end_tag[modality].expand(b, 1, -1)
        return torch.cat([tags[0], self.proj_out[modality](y), tags[1]], dim=1)
