"""LoRA (peft) as the LLM adapter: low-rank updates on the attention projections, the rest of the LLM frozen.

New tokens (``<Media>``, ``</Media>``) also need embeddings of their own: peft's ``trainable_token_indices`` trains
just those rows (with tied embeddings they are their output rows too), not the whole table.
"""

from __future__ import annotations

import warnings
from pathlib import Path

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
        from peft.utils import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(llm, load_file(folder / ADAPTER_DIR / "adapter_model.safetensors"))
