"""LaVIN's input side: a small two-layer projection per modality (LaVIN's ``AdapterMLP``, 1024 → 128 → D with SiLU).

An image or a sound is one vector; ``Linear(D, 128) → SiLU → Linear(128, tokens·H)`` maps it to ``tokens``
embeddings. A video is read as in ``linear.py``: its mean frame and its motion (``mean_and_motion``), cut in order
into ``tokens`` groups, each group's mean + motion mapped by the same two layers to one token. Both layers are
Xavier-initialised with zero biases, as in LaVIN. It pairs with LaVIN's mixture-of-modality adapters
(``moma.py``), but any adapter can use it.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .linear import mean_and_motion

HIDDEN = 128  # LaVIN's ``--hidden_proj``


class TwoLayerProjection(nn.Module):
    """``[B, D]`` (or ``[B, frames, D]``) → ``[B, tokens, H]`` through ``Linear → SiLU → Linear``."""

    def __init__(self, in_dim: int, out_dim: int, tokens: int = 1, frames: int = 1, hidden: int = HIDDEN):
        super().__init__()
        if frames % tokens and frames > 1:
            raise ValueError(f"{frames} video frames cannot be cut into {tokens} equal groups")
        self.tokens, self.frames = tokens, frames
        width_in, width_out = (in_dim, out_dim * tokens) if frames == 1 else (in_dim * (1 + frames // tokens), out_dim)
        self.mlp = nn.Sequential(nn.Linear(width_in, hidden), nn.SiLU(), nn.Linear(hidden, width_out))
        for layer in (self.mlp[0], self.mlp[2]):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if x.dim() == 2:
            return self.mlp(x).reshape(b, self.tokens, -1)
        mean, motion = mean_and_motion(x)  # [B, D], [B, T, D]
        groups = motion.reshape(b, self.tokens, -1)  # [B, tokens, group·D]
        return self.mlp(torch.cat([mean[:, None].expand(-1, self.tokens, -1), groups], dim=-1))


class LaVINProjections(nn.ModuleDict):
    """One ``TwoLayerProjection`` per modality, keyed by modality name."""

    def __init__(self, feature_dims: dict[str, int], hidden: int, media_tokens: int = 1, video_tokens: int = 4,
                 video_frames: int = 8):
        super().__init__({m: TwoLayerProjection(d, hidden, *((video_tokens, video_frames) if m == "video" else
                                                              (media_tokens, 1)))
                          for m, d in feature_dims.items()})

    def tokens(self, modality: str) -> int:
        return self[modality].tokens

    def forward(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        return self[modality](features)
