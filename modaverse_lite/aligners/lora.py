"""LoRA (peft) as the LLM adapter: low-rank updates on the attention projections, the rest of the LLM frozen.

New tokens (``<Media>``, ``</Media>``) also need embeddings of their own: peft's ``trainable_token_indices`` trains
just those rows (with tied embeddings they are their output rows too), not the whole table.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import CheckpointError
from ..profiles import LoraSettings

ADAPTER_DIR = "adapter"  # inside a checkpoint


class LoRA:
    """``apply`` wraps an LLM with peft LoRA; ``save`` / ``load`` write and read only the trained weights."""

    @staticmethod
    def apply(llm, settings: LoraSettings, new_token_ids: list[int]):
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                            target_modules=list(settings.target_modules), task_type="CAUSAL_LM",
                            trainable_token_indices={"embed_tokens": list(new_token_ids)})
        with warnings.catch_warnings():  # peft reads transformers' deprecated `is_gradient_checkpointing`
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            return get_peft_model(llm, config)

    @staticmethod
    def save(llm, folder: Path) -> None:
        llm.save_pretrained(folder / ADAPTER_DIR, save_embedding_layers=False)  # new-token rows only, not the table

    @staticmethod
    def load(llm, folder: Path) -> None:
        """Read the trained weights back into ``llm``. Strict: the file must hold exactly the weights this LLM's
        adapter has (peft alone would skip missing ones and leave them untrained); CheckpointError otherwise."""
        from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
        from safetensors.torch import load_file

        file = folder / ADAPTER_DIR / "adapter_model.safetensors"
        where = f"{folder}: {ADAPTER_DIR}/{file.name}"
        if not file.is_file():
            raise CheckpointError(f"{where} is missing; the checkpoint is incomplete: train it again")
        try:
            weights = load_file(file)  # safetensors: never runs code from the file, unlike pickle
        except Exception as err:  # safetensors' SafetensorError: truncated, or not safetensors at all
            raise CheckpointError(f"{where} is not a readable safetensors file ({err}); the checkpoint is damaged: "
                                  "train it again") from err
        expected = set(get_peft_model_state_dict(llm, save_embedding_layers=False))
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        if missing or unexpected:
            raise CheckpointError(f"{where} does not fit this LLM's adapter (missing {missing[:3]}, unexpected "
                                  f"{unexpected[:3]}); the checkpoint is damaged: train it again")
        try:
            set_peft_model_state_dict(llm, weights)
        except RuntimeError as err:  # a weight of another shape (another rank, another LLM)
            raise CheckpointError(f"{where} does not fit this LLM's adapter ({err}); train the checkpoint "
                                  "again") from err
