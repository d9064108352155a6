"""Frozen encoders → embeddings, and the feature cache.

ModaVerse never trains its encoders (the paper uses ImageBind; we use CLIP for images and video frames, CLAP for
audio). Frozen means an item's embedding never changes, so it is computed once and cached on disk, keyed by the
item's content and the encoder. Training then reads embeddings, never media.

* image → one vector ``[D]``; audio → one vector ``[D]``;
* video → one vector per sampled frame, in order ``[T, D]`` (the projection decides how many LLM tokens a clip
  becomes; averaging frames here would erase the direction of motion).

**Token sequences**, for an aligner that reads them (``kind="tokens"``: the perceiver, the universal projection;
an input side says which it wants in its ``features`` attribute). Each token is a last-layer token of the encoder
put through the encoder's own projection head (``visual_projection`` / ``audio_projection``), so a token lives in
the same space and has the same width ``D`` as the pooled embedding; each is L2-normalised. Token 0 is the pooled
embedding itself; the patch tokens after it are average-pooled to a small grid, so 12,000 items fit in RAM:

* image → ``[1 + 4·4, D]``: the pooled embedding, then the patch grid pooled to 4 × 4 (the tiny CLIP has 8 × 8);
* video → ``[frames · (1 + 2·2), D]``: each frame's pooled embedding and its patches pooled to 2 × 2, frame by frame;
* audio → ``[1 + 16, D]``: the pooled embedding, then CLAP's last-layer patch tokens pooled to 16 in order.

Token features are cached apart from the pooled ones (their own cache key) and, like them, computed once.

``record_features`` does this for a dataset's records: one table per modality and each record's row in it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import media, world, zoo
from .errors import CheckpointError, MediaError
from .files import atomic_path, cache_dir
from .profiles import Profile, get_profile
from .zoo import pooled

ROLE = {"image": "image_encoder", "video": "image_encoder", "audio": "audio_encoder"}
KINDS = ("pooled", "tokens")  # what an aligner reads: one vector (a frame: one per frame), or token sequences
TOKEN_GRID = {"image": 4, "video": 2}  # patch grids are average-pooled to GRID × GRID tokens
AUDIO_TOKENS = 16  # CLAP's patch tokens, average-pooled to this many, in order


def token_count(modality: str, frames: int = 8) -> int:
    """How many tokens ``kind="tokens"`` gives one medium of ``modality`` (each of the encoder's width)."""
    if modality == "audio":
        return 1 + AUDIO_TOKENS
    per_frame = 1 + TOKEN_GRID[modality] ** 2
    return per_frame * frames if modality == "video" else per_frame


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown feature kind {kind!r}; expected one of {KINDS}")


@dataclass
class Encoder:
    """A frozen transformers model with its preprocessor, for one modality."""

    modality: str
    checkpoint: str
    model: torch.nn.Module
    processor: object  # an image processor or an audio feature extractor
    device: str
    frames: int  # video frames per clip
    max_seconds: float  # audio longer than this is cut
    tokenizer: object = None  # the text tower's tokenizer, loaded by embed_text

    @property
    def sample_rate(self) -> int | None:
        return getattr(self.processor, "sampling_rate", None)

    @property
    def key(self) -> str:
        """Names this encoder and its preprocessing: part of every cache key."""
        return f"{self.checkpoint}|{self.modality}|frames={self.frames}|sr={self.sample_rate}|s={self.max_seconds}"

    def load(self, item, source_rate: int | None = None) -> np.ndarray:
        """A path or an array → the array this encoder's preprocessor takes."""
        if self.modality == "image":
            return media.load_image(item)
        if self.modality == "video":
            return media.load_video(item, frames=self.frames)
        return media.load_audio(item, sample_rate=self.sample_rate, source_rate=source_rate,
                                max_seconds=self.max_seconds)

    def _inputs(self, arrays: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """Loaded arrays → the model's inputs on its device: a sound's mel features, or the pixels of every image
        (of every frame of every clip, clip after clip)."""
        dtype = next(self.model.parameters()).dtype
        if self.modality == "audio":
            inputs = self.processor(arrays, sampling_rate=self.sample_rate, return_tensors="pt")
            return {"input_features": inputs["input_features"].to(self.device, dtype)}
        images = [f for clip in arrays for f in clip] if self.modality == "video" else arrays
        pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
        return {"pixel_values": pixels.to(self.device, dtype)}

    @torch.no_grad()
    def embed(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """Loaded arrays → L2-normalised embeddings on the CPU: ``[N, D]`` (video ``[N, T, D]``)."""
        inputs = self._inputs(arrays)
        if self.modality == "audio":
            out = self.model.get_audio_features(**inputs)
        else:
            out = self.model.get_image_features(**inputs)
        out = F.normalize(pooled(out).float(), dim=-1).cpu()
        return out.reshape(len(arrays), self.frames, -1) if self.modality == "video" else out

    def cache_key(self, kind: str = "pooled") -> str:
        """The cache key of this encoder's features of ``kind`` (the pooled key is ``key``, as it always was)."""
        _check_kind(kind)
        if kind == "pooled":
            return self.key
        return f"{self.key}|tokens|grid={TOKEN_GRID}|audio={AUDIO_TOKENS}"

    @torch.no_grad()
    def embed_tokens(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """Loaded arrays → token sequences, each token L2-normalised (module docstring): ``[N, token_count, D]``."""
        inputs = self._inputs(arrays)
        if self.modality == "audio":
            out = self.model.audio_model(**inputs)
            patches = out.last_hidden_state.flatten(2)  # [N, C, f·t]: CLAP's last-layer patch tokens
            patches = F.adaptive_avg_pool1d(patches, AUDIO_TOKENS).transpose(1, 2)  # [N, AUDIO_TOKENS, C]
            tokens = self.model.audio_projection(torch.cat([out.pooler_output[:, None], patches], dim=1))
        else:
            vision = self.model.vision_model(**inputs)
            hidden = self.model.vision_model.post_layernorm(vision.last_hidden_state)  # what CLIP pools, per token
            cls, patches = hidden[:, :1], hidden[:, 1:]
            side = int(round(patches.shape[1] ** 0.5))
            grid = TOKEN_GRID[self.modality]
            patches = patches.transpose(1, 2).reshape(patches.shape[0], -1, side, side)
            patches = F.adaptive_avg_pool2d(patches, grid).flatten(2).transpose(1, 2)  # [N, grid², W], row-major
            tokens = self.model.visual_projection(torch.cat([cls, patches], dim=1))
        tokens = F.normalize(tokens.float(), dim=-1).cpu()
        return tokens.reshape(len(arrays), -1, tokens.shape[-1])  # a video's frames follow each other

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        """The text tower of the same CLIP / CLAP model: L2-normalised ``[N, D]``, comparable with ``embed``."""
        if self.tokenizer is None:  # loaded once, on first use: only the round trip needs the text tower
            from transformers import AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(self.checkpoint)
        inputs = self.tokenizer(list(texts), padding=True, return_tensors="pt").to(self.device)
        return F.normalize(pooled(self.model.get_text_features(**inputs)).float(), dim=-1).cpu()


@lru_cache(maxsize=8)
def _load(modality: str, checkpoint: str, device: str, dtype: str, frames: int, max_seconds: float) -> Encoder:
    from transformers import AutoFeatureExtractor, AutoImageProcessor, AutoModel

    try:
        model = AutoModel.from_pretrained(checkpoint, dtype=getattr(torch, dtype))
        processor = (AutoFeatureExtractor if modality == "audio" else AutoImageProcessor).from_pretrained(checkpoint)
    except (OSError, ValueError) as err:
        raise CheckpointError(f"cannot load the {modality} encoder from {checkpoint!r}: {err}. Is it a hub id or a "
                              "folder saved with save_pretrained?") from err
    model.requires_grad_(False).eval().to(device)
    return Encoder(modality, checkpoint, model, processor, device, frames, max_seconds)


def load_encoder(modality: str, profile: str | Profile = "auto") -> Encoder:
    """The frozen encoder a profile uses for ``modality`` (loaded once per process)."""
    if modality not in ROLE:
        raise MediaError(f"unknown modality {modality!r}; expected one of {tuple(ROLE)}")
    p = get_profile(profile)
    return _load(modality, zoo.checkpoint(p, ROLE[modality]), p.device, p.dtype, p.video_frames, p.audio_seconds)


class FeatureCache:
    """Embeddings on disk, one safetensors file per encoder, keyed by the content hash of each item."""

    def __init__(self, encoder_key: str, root: str | Path | None = None):
        digest = hashlib.sha256(encoder_key.encode()).hexdigest()[:16]
        self.path = Path(root or cache_dir() / "features") / f"{digest}.safetensors"
        self.features: dict[str, torch.Tensor] = {}
        self.dirty = False
        if self.path.exists():
            from safetensors.torch import load_file

            self.features = load_file(self.path)

    def save(self) -> None:
        """Write atomically (temporary name, then rename), so an interruption keeps the last good file."""
        if not self.dirty:
            return
        from safetensors.torch import save_file

        with atomic_path(self.path) as tmp:
            save_file({k: v.contiguous() for k, v in self.features.items()}, tmp)
        self.dirty = False


HASH_CHUNK = 1 << 20  # files are hashed 1 MiB at a time, so a 12 GB video costs 1 MiB of memory, not 12 GB


def content_hash(item) -> str:
    """sha256 of a file's bytes (read in chunks of ``HASH_CHUNK``) or of an array's dtype, shape and bytes."""
    h = hashlib.sha256()
    if isinstance(item, (str, Path)):
        p = Path(item)
        if not p.is_file():
            raise MediaError(f"{p}: no such file" + (" (it is a directory)" if p.is_dir() else ""))
        with open(p, "rb") as f:
            while chunk := f.read(HASH_CHUNK):
                h.update(chunk)
    else:
        a = np.ascontiguousarray(np.asarray(item))
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def encode(items, modality: str, profile: str | Profile = "auto", batch_size: int = 64, cache: bool = True,
           source_rate: int | None = None, progress: bool = True, kind: str = "pooled") -> torch.Tensor:
    """Embed media (paths or arrays) with the profile's frozen encoder; cached items are not re-encoded.

    ``source_rate`` is the sample rate of audio given as arrays (world audio: ``world.SAMPLE_RATE``).
    Returns ``[N, D]``, or ``[N, T, D]`` for video; with ``kind="tokens"``, ``[N, token_count(modality), D]``.
    """
    _check_kind(kind)
    items = list(items)
    p = get_profile(profile)
    encoder = load_encoder(modality, p)
    embed = encoder.embed if kind == "pooled" else encoder.embed_tokens
    store = FeatureCache(encoder.cache_key(kind)) if cache else None
    keys = [content_hash(item) for item in items]
    todo = [i for i, k in enumerate(keys) if store is None or k not in store.features]
    fresh: dict[str, torch.Tensor] = {}
    with zoo.fixed_threads(p.train.threads if p.device == "cpu" else 0):  # the same features on any machine
        for start in tqdm(range(0, len(todo), batch_size), desc=f"encode {modality}",
                          disable=not progress or not todo):
            chunk = todo[start:start + batch_size]
            vectors = embed([encoder.load(items[i], source_rate) for i in chunk])
            fresh.update({keys[i]: v for i, v in zip(chunk, vectors)})
    if store is not None and fresh:
        store.features.update(fresh)
        store.dirty = True
        store.save()
    table = store.features if store is not None else fresh
    if not items:
        return torch.empty(0)
    return torch.stack([fresh.get(k, table.get(k)) for k in keys])


def record_features(records, root: str | os.PathLike, profile: str | Profile = "auto", progress: bool = True,
                    kind: str = "pooled"):
    """The features of the records' media, each medium encoded once (and cached), and each record's row:
    ``({"image": [N, D], ...}, [(modality, row) | None, ...])`` — None for a text-only record, and a tuple of
    ``(modality, row)`` pairs (in ``Record.inputs`` order) for a record with several media. ``kind``: pooled
    embeddings or token sequences (``encode``), as the model's input side asks (``ModelConfig.feature_kind``)."""
    _check_kind(kind)
    paths: dict[str, dict[str, tuple[int, Path]]] = {}  # modality -> media path -> (row, file)
    rows = []
    for r in records:
        inputs = r.inputs
        if not inputs:
            rows.append(None)
            continue
        found = []
        for m in inputs:
            table = paths.setdefault(m, {})
            if r.media[m] not in table:
                table[r.media[m]] = (len(table), r.media_path(root, m))  # DatasetError if the path leaves root
            found.append((m, table[r.media[m]][0]))
        rows.append(found[0] if len(found) == 1 else tuple(found))
    features = {m: encode([file for _, file in table.values()], m, profile, progress=progress, kind=kind)
                for m, table in paths.items()}
    return features, rows


def feature_dims(profile: str | Profile = "auto") -> dict[str, int]:
    """Embedding width of each modality's frozen encoder, read from its config (in ``world.MODALITIES`` order)."""
    return {m: load_encoder(m, profile).model.config.projection_dim for m in world.MODALITIES}
