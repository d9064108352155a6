"""ModaVerse's input side: a linear projection per modality (the *converter* family, as in LLaVA).

An image or a sound is one vector; one linear layer maps it to ``tokens`` embeddings at once (``[B, D] →
[B, tokens, H]``). A video is one vector per frame: its frames are cut, in order, into ``tokens`` groups (8 frames
→ 4 groups of 2), and each group's concatenated frames are mapped by one linear layer to one token. Still linear,
still ordered, and a token can carry the change between its frames — the motion — which averaging frames would erase.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class Projection(nn.Module):
    """Linear map from an encoder's embedding (``[B, D]``, or ``[B, frames, D]``) to ``tokens`` LLM embeddings."""

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


class LinearProjections(nn.ModuleDict):
    """One ``Projection`` per modality, keyed by modality name (``self["video"]``)."""

    def __init__(self, feature_dims: dict[str, int], hidden: int, media_tokens: int = 1, video_tokens: int = 4,
                 video_frames: int = 8):
        super().__init__({m: Projection(d, hidden, *((video_tokens, video_frames) if m == "video" else
                                                      (media_tokens, 1)))
                          for m, d in feature_dims.items()})

    def tokens(self, modality: str) -> int:
        """How many LLM input embeddings one medium of ``modality`` becomes."""
        return self[modality].tokens

    def forward(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        return self[modality](features)
