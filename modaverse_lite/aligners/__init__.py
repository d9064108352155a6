"""The two choices around the frozen LLM, each made by name: the input side and the LLM adapter.

* **input side** — frozen media features → LLM input embeddings, the tokens between ``<Media>`` and ``</Media>``.

  - ``"linear"``: one linear projection per modality, ModaVerse's (and LLaVA's) *converter* (``linear.py``);
  - ``"perceiver"``: learned queries cross-attend to the encoder's token sequence, Flamingo's resampler / BLIP-2's
    Q-Former (``perceiver.py``);
  - ``"universal"``: OneLLM's universal projection, three shared experts mixed by a per-modality soft router, with
    per-modality queries and start / end tags (``universal.py``);
  - ``"tool"``: tool learning (Visual ChatGPT, HuggingGPT): a frozen tool writes the medium as a caption and the LLM
    reads that text; zero trainable parameters on the input side (``tool.py``).
  - ``"lavin"``: LaVIN's two-layer projection (in → 128 → H, SiLU) per modality (``lavin.py``).
* **adapter** — how the LLM itself is tuned. ``"lora"``: peft LoRA on the attention projections, plus trainable
  embedding rows for the new tokens (``lora.py``); ``"moma"``: LaVIN's mixture-of-modality adapters, routed by a
  modality token, the LLM frozen (``moma.py``); ``"full"``: every LLM weight trains, and the checkpoint holds the
  whole LLM (``full.py``).

A profile (and the ``ModelConfig`` of a checkpoint) names one of each: ``get_profile("tiny").with_(aligner=
"perceiver")``. Another design is one module here plus one line in a table below; the model and the training loop
only ever see these interfaces:

* an input side is built as ``INPUT_SIDES[name](feature_dims, hidden, media_tokens, video_tokens, video_frames,
  **context)``, an ``nn.Module`` with

  - ``tokens(modality) -> int`` and ``forward(modality, features) -> [B, tokens, hidden]``;
  - a class attribute ``features``: ``"pooled"`` (image / audio ``[B, D]``, video ``[B, frames, D]``) or ``"tokens"``
    (``[B, encode.token_count(modality, frames), D]``), the kind ``encode.record_features(kind=...)`` gives it
    (``feature_kind(name)``; ``ModelConfig.feature_kind``); training and ``evaluate.answer`` ask for that kind;
  - optionally ``prepare(train_records, profile)``, called once on a fresh model before training (tool learning
    builds its caption bank there); whatever it builds must be in the module's ``state_dict`` to be saved;
  - ``context``: keyword arguments the model passes to every input side, each free to ignore them (accept
    ``**context``): ``tokenizer`` (the LLM's, with the media tokens), ``embed_tokens`` (a function: token ids → the
    LLM's input embeddings, read through the adapted LLM), ``embedding_rms`` (the root-mean-square of the LLM's
    embedding table: the size of a word's embedding).

  Its ``state_dict`` is saved as the checkpoint's ``projections.safetensors`` and read back with ``load_state_dict``
  (a RuntimeError there is the checkpoint's CheckpointError).
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

from ..errors import ProfileError
from .full import Full
from .lavin import LaVINProjections, TwoLayerProjection
from .linear import LinearProjections, Projection
from .lora import LoRA
from .moma import MoMA, MoMASettings
from .perceiver import Perceiver
from .tool import ToolLearning
from .universal import UniversalProjection

INPUT_SIDES = {"linear": LinearProjections, "perceiver": Perceiver, "universal": UniversalProjection,
               "tool": ToolLearning, "lavin": LaVINProjections}
ADAPTERS = {"lora": LoRA, "moma": MoMA, "full": Full}


def feature_kind(aligner: str) -> str:
    """The features input side ``aligner`` reads: ``"pooled"`` or ``"tokens"``."""
    if aligner not in INPUT_SIDES:
        raise ProfileError(f"unknown aligner {aligner!r}; known: {sorted(INPUT_SIDES)}")
    return getattr(INPUT_SIDES[aligner], "features", "pooled")


__all__ = ["ADAPTERS", "INPUT_SIDES", "Full", "LaVINProjections", "LinearProjections", "LoRA", "MoMA", "MoMASettings",
           "Perceiver", "Projection", "ToolLearning", "TwoLayerProjection", "UniversalProjection", "feature_kind"]
