"""LaVIN's mixture-of-modality adapters (MMA, Luo et al. 2023) in place of LoRA: the LLM stays frozen.

In every decoder block, between the input norm and the attention (LaVIN's ``adapter_type attn``:
``attention(adapter_attn(attention_norm(x)))``), the normalised hidden states ``x`` pass through::

    A(x) = x + s · (w0 · U0(Dn(x)) + w1 · U1(Dn(x)))

``Dn``: one down-projection to 8 dimensions shared by both paths (dropout 0.1 on its output, no activation);
``U0``, ``U1``: two up-projections, each block-diagonal in 2 groups (LaVIN's ``Conv1d(..., groups=2)``) and
initialised to **zero**, so at step 0 every ``A`` is the identity and the LLM answers exactly as before.
``w = softmax(router(z) / τ)`` (τ = 10, s = 1 in LaVIN-7B) weighs the two paths; ``z`` is the hidden state of a
**modality token** at this block's input, after the norm — one of two learned embeddings, *media present* or
*text only*. A text-only instruction thus takes its own path, which is how LaVIN keeps the LLM's language
ability while it learns the media.

Where the modality token lives. LaVIN prepends it at position 0 and hides it from every other token (its attention
mask has ``mask[:, :, 1:, 0] = -inf``; in generation it is dropped from the KV cache). A token that only attends to
itself has, at every block, exactly the hidden state it would have as a sequence of one — so ``MoMA.routing`` runs
the two modality tokens through the LLM as a one-token batch of their own (the *decision pass*; each block's
adapter reads ``z`` there), then keeps each row's weights for the instruction itself, for every token of it and
for every token ``generate`` adds (LaVIN's ``forward_llama_attn_cache`` computes them once, at ``start_pos == 0``).
The instruction's sequence is left as it was: no extra position, no custom mask, the KV cache untouched.
``tests/test_aligners_adapters.py`` checks this against LaVIN's literal form (token prepended, masked).

What trains: the adapters, the routers and the two modality embeddings (and the input side); nothing of the LLM.
LaVIN also puts routed adapters in its (frozen) CLIP encoder; here the encoders' features are cached, so it has
none. LaVIN's input side, a two-layer projection, is ``aligners/lavin.py``.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn

from ..errors import CheckpointError
from .weights import check_fits, read_weights

ADAPTER_DIR = "adapter"  # inside a checkpoint
FILE = "moma.safetensors"
TEXT_ONLY, MEDIA = 0, 1  # the rows of the modality embedding (LaVIN's ``img_indicators``)


@dataclass(frozen=True)
class MoMASettings:
    """LaVIN-7B's settings (scripts/finetuning_sqa_7b.sh: ``--adapter_dim 8 --adapter_scale 1 --temperature 10``)."""

    rank: int = 8  # the shared down-projection's width
    scale: float = 1.0  # s
    temperature: float = 10.0  # τ (LaVIN-13B's instruction tuning uses 5)
    dropout: float = 0.1  # on the down-projection's output, as in RepAdapter_Router
    groups: int = 2  # the up-projections are block-diagonal in this many groups


class GroupedLinear(nn.Module):
    """A linear map cut into ``groups`` independent blocks (LaVIN's ``Conv1d(k=1, groups=2)``): the i-th slice of the
    input writes only the i-th slice of the output. Zero-initialised: it starts as the zero map."""

    def __init__(self, in_features: int, out_features: int, groups: int):
        super().__init__()
        if in_features % groups or out_features % groups:
            raise ValueError(f"{in_features} → {out_features} cannot be cut into {groups} equal groups")
        self.groups = groups
        self.weight = nn.Parameter(torch.zeros(groups, out_features // groups, in_features // groups))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.unflatten(-1, (self.groups, -1))  # [..., groups, in/groups]
        return torch.einsum("...gi,goi->...go", parts, self.weight).flatten(-2) + self.bias


class MixtureOfModalityAdapter(nn.Module):
    """One block's routed adapter (LaVIN's ``RepAdapter_Router``): ``x + s·(w0·U0(Dn(x)) + w1·U1(Dn(x)))``.

    ``weights`` ([B, 2]) are the router's choice for each row of the batch the LLM is running; ``MoMA.routing`` sets
    them. With ``deciding`` on, the adapter is in the decision pass: it computes them from position 0 of its input.
    """

    def __init__(self, hidden: int, settings: MoMASettings):
        super().__init__()
        self.settings = settings
        self.down = nn.Linear(hidden, settings.rank)  # Dn, shared
        self.up = nn.ModuleList([GroupedLinear(settings.rank, hidden, settings.groups) for _ in range(2)])  # U0, U1
        self.router = nn.Linear(hidden, 2)
        self.dropout = nn.Dropout(settings.dropout)
        nn.init.xavier_uniform_(self.down.weight)
        nn.init.zeros_(self.down.bias)
        self.weights: torch.Tensor | None = None
        self.deciding = False

    def route(self, z: torch.Tensor) -> torch.Tensor:
        """The router: ``softmax(Linear(z) / τ)``, [n, H] → [n, 2]."""
        return torch.softmax(self.router(z) / self.settings.temperature, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.deciding:  # the decision pass: position 0 is the modality token
            self.weights = self.route(x[:, 0])
        if self.weights is None:
            raise RuntimeError("a mixture-of-modality adapter has no routing weights: run the LLM inside "
                               "`MoMA.routing(llm, media)` (ModaVerseLite.loss and generate do)")
        w = self.weights.to(x.dtype)[:, None, :]  # [B, 1, 2]: one choice per row, for all its positions
        low = self.dropout(self.down(x))
        return x + self.settings.scale * (w[..., :1] * self.up[0](low) + w[..., 1:] * self.up[1](low))


class AdaptedNorm(nn.Module):
    """A block's input norm followed by its adapter: what the block's attention reads."""

    def __init__(self, norm: nn.Module, adapter: MixtureOfModalityAdapter):
        super().__init__()
        self.norm, self.adapter = norm, adapter

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(self.norm(x))


def adapters(llm) -> list[MixtureOfModalityAdapter]:
    """The LLM's adapters, first block first."""
    return [m for m in llm.modules() if isinstance(m, MixtureOfModalityAdapter)]


class MoMA:
    """``apply`` puts an adapter in every decoder block and adds the modality embedding; ``routing`` tells the
    adapters which rows hold media; ``save`` / ``load`` write and read only what trains."""

    settings = MoMASettings()

    @classmethod
    def apply(cls, llm, settings=None, new_token_ids=()):
        """``settings`` (LoRA's) and ``new_token_ids`` are not used: LaVIN trains no LLM weight, no token row."""
        hidden = llm.get_input_embeddings().weight.shape[1]
        for p in llm.parameters():
            p.requires_grad_(False)
        layers = llm.get_decoder().layers
        for layer in layers:
            layer.input_layernorm = AdaptedNorm(layer.input_layernorm, MixtureOfModalityAdapter(hidden, cls.settings))
        llm.modality_embedding = nn.Embedding(2, hidden)  # text only / media present (LaVIN's default init)
        return llm

    @staticmethod
    @contextlib.contextmanager
    def routing(llm, media: list[bool]):
        """Within this block every adapter of ``llm`` uses, for row i of the batch, the weights its router read from
        the modality token ``MEDIA if media[i] else TEXT_ONLY``. The decision pass runs here, once (in the graph:
        training reaches the routers and the modality embeddings through it)."""
        blocks = adapters(llm)
        table = llm.modality_embedding.weight
        kinds = torch.tensor([MEDIA if m else TEXT_ONLY for m in media], device=table.device)
        for a in blocks:
            a.deciding = True
        try:
            llm.get_decoder()(inputs_embeds=table[:, None], use_cache=False)  # [2, 1, H]: each token alone
            for a in blocks:
                a.deciding, a.weights = False, a.weights[kinds]  # [2, 2] → [B, 2]
            yield
        finally:
            for a in blocks:
                a.deciding, a.weights = False, None

    @staticmethod
    def trained(llm) -> dict[str, torch.Tensor]:
        return {n: p for n, p in llm.named_parameters() if p.requires_grad}

    @classmethod
    def save(cls, llm, folder: Path) -> None:
        from safetensors.torch import save_file

        (folder / ADAPTER_DIR).mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().cpu().contiguous() for k, v in cls.trained(llm).items()},
                  folder / ADAPTER_DIR / FILE, metadata={"settings": json.dumps(asdict(cls.settings))})

    @classmethod
    def load(cls, llm, folder: Path) -> None:
        """Strict: the file must hold exactly this LLM's adapter weights, trained with the same settings."""
        where = f"{folder}: {ADAPTER_DIR}/{FILE}"
        weights, metadata = read_weights(folder / ADAPTER_DIR, FILE)
        if metadata.get("settings") != json.dumps(asdict(cls.settings)):
            raise CheckpointError(f"{where} was trained with adapter settings {metadata.get('settings')}, not "
                                  f"{asdict(cls.settings)}; train the checkpoint again")
        expected = cls.trained(llm)
        check_fits(where, weights, expected)
        with torch.no_grad():
            for name, param in expected.items():
                param.copy_(weights[name])
