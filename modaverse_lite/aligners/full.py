"""Full fine-tuning as the "adapter": no new module, every weight of the LLM trains (the *data-driven* family).

Nothing is added to the LLM; every weight — attention, MLP, norms and the whole embedding table, the new tokens'
rows among them — gets a gradient. The checkpoint therefore holds **the whole LLM** (``llm.safetensors``, its
size that of the base LLM), not a small adapter file; the base LLM is still needed to rebuild the model's shape
before the weights are read over it.

Tied embeddings (the tiny LLM's, Qwen 2.5's) share one tensor between the input table and the output layer;
safetensors' ``save_model`` / ``load_model`` write it once.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .weights import check_fits, read_weights

FILE = "llm.safetensors"  # inside a checkpoint


class Full:
    """``apply`` makes every LLM weight trainable; ``save`` / ``load`` write and read the whole LLM."""

    @staticmethod
    def apply(llm, settings=None, new_token_ids=()):
        """``settings`` (LoRA's) and ``new_token_ids`` are not used: every row of the table trains anyway."""
        for p in llm.parameters():
            p.requires_grad_(True)
        return llm

    @staticmethod
    def save(llm, folder: Path) -> None:
        from safetensors.torch import save_model

        save_model(llm, str(folder / FILE))  # one copy of each shared tensor

    @staticmethod
    def load(llm, folder: Path) -> None:
        """Strict: every weight of this LLM, each of its shape (CheckpointError naming the file otherwise)."""
        from safetensors.torch import load_model

        weights, _ = read_weights(folder, FILE)
        expected = {k: v for k, v in llm.state_dict().items()}
        # a tied weight is written under one of its names: the others are not missing
        shared: dict[int, list[str]] = {}
        for name, tensor in expected.items():
            shared.setdefault(tensor.data_ptr(), []).append(name)
        for names in shared.values():
            kept = [n for n in names if n in weights]
            for n in names:
                if kept and n not in kept:
                    expected.pop(n)
        check_fits(f"{folder}: {FILE}", weights, expected)
        with torch.no_grad():
            load_model(llm, str(folder / FILE), strict=True)
