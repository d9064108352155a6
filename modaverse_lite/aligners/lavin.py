"""LaVIN's input side: a small two-layer projection per modality (LaVIN's ``AdapterMLP``, 1024 → 128 → D with SiLU).

An image or a sound is one vector; ``Linear(D, 128) → SiLU → Linear(128, tokens·H)`` maps it to ``tokens``
embeddings. A video is read as in ``linear.py``: its mean frame and its motion (``mean_and_motion``), cut in order
into ``tokens`` groups, each group's mean + motion mapped by the same two layers to one token. Both layers are
Xavier-initialised with zero biases, as in LaVIN. It pairs with LaVIN's mixture-of-modality adapters
(``moma.py``), but any adapter can use it.
"""

from __future__ import annotations

import torch.nn as nn

from .linear import LinearProjections, Projection

HIDDEN = 128  # LaVIN's ``--hidden_proj``


class TwoLayerProjection(Projection):
    """``[B, D]`` (or ``[B, frames, D]``) → ``[B, tokens, H]`` through ``Linear → SiLU → Linear``; a video as in
    ``linear.Projection`` (its mean frame and motion, in ordered groups)."""

    @staticmethod
    def layer(width_in: int, width_out: int) -> nn.Module:
        mlp = nn.Sequential(nn.Linear(width_in, HIDDEN), nn.SiLU(), nn.Linear(HIDDEN, width_out))
        for linear in (mlp[0], mlp[2]):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
        return mlp


class LaVINProjections(LinearProjections):
    """One ``TwoLayerProjection`` per modality, keyed by modality name."""

    projection = TwoLayerProjection
