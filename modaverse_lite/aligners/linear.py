"""ModaVerse's input side: a linear projection per modality (the *converter* family, as in LLaVA).

An image or a sound is one vector; one linear layer maps it to ``tokens`` embeddings at once (``[B, D] →
[B, tokens, H]``). A video is one vector per frame. Its frames are first written as the clip's **mean frame** (what
is in it) and its **motion** (each frame minus the mean, scaled to unit size per frame on average: where it goes),
then cut, in order, into ``tokens`` groups (8 frames → 4 groups of 2); each group's mean + motion is mapped by one
linear layer to one token. Still linear in the frames' deviations, still ordered; but the motion no longer hides as
a small difference between large, nearly equal frame vectors, which a linear layer trained for a few minutes
reads only for some encoders and not for others (docs/NOTES.md).
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
            self.linear = self.layer(in_dim, out_dim * tokens)
        else:  # `frames` vectors → `tokens` groups of (mean frame, its frames' motion) → one embedding each
            self.linear = self.layer(in_dim * (1 + frames // tokens), out_dim)

    @staticmethod
    def layer(width_in: int, width_out: int) -> nn.Module:
        """The map itself: one linear layer here (LaVIN's input side puts two in its place, ``lavin.py``)."""
        return nn.Linear(width_in, width_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        if x.dim() == 2:  # [B, D] → [B, tokens·H] → [B, tokens, H]
            return self.linear(x).reshape(b, self.tokens, -1)
        mean, motion = mean_and_motion(x)  # [B, D], [B, T, D]
        groups = motion.reshape(b, self.tokens, -1)  # [B, tokens, group·D]
        return self.linear(torch.cat([mean[:, None].expand(-1, self.tokens, -1), groups], dim=-1))


def mean_and_motion(frames: torch.Tensor, floor: float = 1e-3) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, T, D]`` frame embeddings → the mean frame ``[B, D]`` and the motion ``[B, T, D]``: each frame minus
    the mean, divided by the root-mean-square of those differences' norms (a still clip's motion stays ~0)."""
    mean = frames.mean(dim=1)
    motion = frames - mean[:, None]
    size = motion.pow(2).sum(-1).mean(-1).sqrt().clamp_min(floor)  # [B]
    return mean, motion / size[:, None, None]


class LinearProjections(nn.ModuleDict):
    """One ``Projection`` per modality, keyed by modality name (``self["video"]``). Reads pooled features."""

    features = "pooled"
    projection = Projection  # the map of one modality

    def __init__(self, feature_dims: dict[str, int], hidden: int, media_tokens: int = 1, video_tokens: int = 4,
                 video_frames: int = 8, **context):
        super().__init__({m: self.projection(d, hidden, *((video_tokens, video_frames) if m == "video" else
                                                           (media_tokens, 1)))
                          for m, d in feature_dims.items()})

    def tokens(self, modality: str) -> int:
        """How many LLM input embeddings one medium of ``modality`` becomes."""
        return self[modality].tokens

    def forward(self, modality: str, features: torch.Tensor) -> torch.Tensor:
        return self[modality](features)
