"""The two choices around the frozen LLM, each made by name: the input side and the LLM adapter.

* **input side** — frozen media features → LLM input embeddings, the tokens between ``<Media>`` and ``</Media>``.
  ``"linear"``: one linear projection per modality, ModaVerse's (and LLaVA's) *converter* (``linear.py``);
  ``"lavin"``: LaVIN's two-layer projection (in → 128 → H, SiLU) per modality (``lavin.py``).
* **adapter** — how the LLM itself is tuned. ``"lora"``: peft LoRA on the attention projections, plus trainable
  embedding rows for the new tokens (``lora.py``); ``"moma"``: LaVIN's mixture-of-modality adapters, routed by a
  modality token, the LLM frozen (``moma.py``); ``"full"``: every LLM weight trains, and the checkpoint holds the
  whole LLM (``full.py``).

A profile (and the ``ModelConfig`` of a checkpoint) names one of each. Another design — a perceiver, OneLLM's
universal projection, LaVIN's mixture-of-modality adapters — is one module here plus one line in a table below;
the model and the training loop only ever see these interfaces:

* an input side is built as ``INPUT_SIDES[name](feature_dims, hidden, media_tokens, video_tokens, video_frames)``,
  an ``nn.Module`` with ``tokens(modality) -> int`` and ``forward(modality, features) -> [B, tokens, hidden]``;
* an adapter is ``ADAPTERS[name]``, with ``apply(llm, settings, new_token_ids)`` (the tuned LLM: peft's wrapper,
  or the LLM itself with modules put in it; ``settings`` are the profile's ``LoraSettings``, which other adapters
  may ignore), ``save(llm, folder)`` and ``load(llm, folder)`` (what was trained, in safetensors; a missing,
  damaged or mismatched file is a CheckpointError naming it);
* optionally ``routing(llm, media)``, a context manager: an adapter whose LLM behaves differently for rows with
  and without media (MoMA) is told, around every LLM call of a batch, ``media[i]`` = whether row i holds a medium.
  The model calls it in ``loss`` and ``generate``, once per batch: whatever it computes holds for every
  generated token too.
"""

from __future__ import annotations

from .full import Full
from .lavin import LaVINProjections, TwoLayerProjection
from .linear import LinearProjections, Projection
from .lora import LoRA
from .moma import MoMA, MoMASettings

INPUT_SIDES = {"linear": LinearProjections, "lavin": LaVINProjections}
ADAPTERS = {"lora": LoRA, "moma": MoMA, "full": Full}

__all__ = ["ADAPTERS", "INPUT_SIDES", "Full", "LaVINProjections", "LinearProjections", "LoRA", "MoMA", "MoMASettings",
           "Projection", "TwoLayerProjection"]
