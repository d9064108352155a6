"""The two choices around the frozen LLM, each made by name: the input side and the LLM adapter.

* **input side** — frozen media features → LLM input embeddings, the tokens between ``<Media>`` and ``</Media>``.
  ``"linear"``: one linear projection per modality, ModaVerse's (and LLaVA's) *converter* (``linear.py``).
* **adapter** — how the LLM itself is tuned. ``"lora"``: peft LoRA on the attention projections, plus trainable
  embedding rows for the new tokens (``lora.py``).

A profile (and the ``ModelConfig`` of a checkpoint) names one of each. Another design — a perceiver, OneLLM's
universal projection, LaVIN's mixture-of-modality adapters — is one module here plus one line in a table below;
the model and the training loop only ever see these interfaces:

* an input side is built as ``INPUT_SIDES[name](feature_dims, hidden, media_tokens, video_tokens, video_frames)``,
  an ``nn.Module`` with ``tokens(modality) -> int`` and ``forward(modality, features) -> [B, tokens, hidden]``;
* an adapter is ``ADAPTERS[name]``, with ``apply(llm, settings, new_token_ids)`` (the tuned LLM), ``save(llm,
  folder)`` and ``load(llm, folder)`` (what was trained, in safetensors).
"""

from __future__ import annotations

from .linear import LinearProjections, Projection
from .lora import LoRA

INPUT_SIDES = {"linear": LinearProjections}
ADAPTERS = {"lora": LoRA}

__all__ = ["ADAPTERS", "INPUT_SIDES", "LinearProjections", "LoRA", "Projection"]
