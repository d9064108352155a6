"""Reading an adapter's safetensors file back, strictly: every failure is a CheckpointError that names the file."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError


def read_weights(folder: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """The tensors and the metadata of ``folder / name``. safetensors reads a header and raw numbers, never code."""
    from safetensors import safe_open

    file, where = folder / name, f"{folder}: {name}"
    if not file.is_file():
        raise CheckpointError(f"{where} is missing; the checkpoint is incomplete: train it again")
    try:
        with safe_open(file, framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}, dict(f.metadata() or {})
    except Exception as err:  # safetensors' SafetensorError: truncated, or not safetensors at all
        raise CheckpointError(f"{where} is not a readable safetensors file ({err}); the checkpoint is damaged: "
                              "train it again") from err


def check_fits(where: str, weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """CheckpointError unless ``weights`` holds exactly the tensors ``expected`` names, each of the same shape."""
    missing, unexpected = sorted(set(expected) - set(weights)), sorted(set(weights) - set(expected))
    misshapen = sorted(k for k in set(expected) & set(weights) if weights[k].shape != expected[k].shape)
    if missing or unexpected or misshapen:
        raise CheckpointError(f"{where} does not fit this LLM's adapter (missing {missing[:3]}, unexpected "
                              f"{unexpected[:3]}, of another shape {misshapen[:3]}); the checkpoint is damaged or "
                              "belongs to another model: train it again")
