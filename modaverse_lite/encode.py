"""Frozen encoders → embeddings, and the feature cache.

ModaVerse never trains its encoders (the paper uses ImageBind; we use CLIP for images and video frames, CLAP for
audio). Frozen means an item's embedding never changes, so it is computed once and cached on disk, keyed by the
item's content and the encoder. Training then reads embeddings, never media.

* image → one vector ``[D]``; audio → one vector ``[D]``;
* video → one vector per sampled frame, in order ``[T, D]`` (the projection decides how many LLM tokens a clip
  becomes; averaging frames here would erase the direction of motion).

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

    @torch.no_grad()
    def embed(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """Loaded arrays → L2-normalised embeddings on the CPU: ``[N, D]`` (video ``[N, T, D]``)."""
        dtype = next(self.model.parameters()).dtype
        if self.modality == "audio":
            inputs = self.processor(arrays, sampling_rate=self.sample_rate, return_tensors="pt")
            out = self.model.get_audio_features(input_features=inputs["input_features"].to(self.device, dtype))
        else:
            images = [f for clip in arrays for f in clip] if self.modality == "video" else arrays
            pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
            out = self.model.get_image_features(pixel_values=pixels.to(self.device, dtype))
        out = F.normalize(pooled(out).float(), dim=-1).cpu()
        return out.reshape(len(arrays), self.frames, -1) if self.modality == "video" else out

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
           source_rate: int | None = None, progress: bool = True) -> torch.Tensor:
    """Embed media (paths or arrays) with the profile's frozen encoder; cached items are not re-encoded.

    ``source_rate`` is the sample rate of audio given as arrays (world audio: ``world.SAMPLE_RATE``).
    Returns ``[N, D]``, or ``[N, T, D]`` for video.
    """
    items = list(items)
    p = get_profile(profile)
    encoder = load_encoder(modality, p)
    store = FeatureCache(encoder.key) if cache else None
    keys = [content_hash(item) for item in items]
    todo = [i for i, k in enumerate(keys) if store is None or k not in store.features]
    fresh: dict[str, torch.Tensor] = {}
    with zoo.fixed_threads(p.train.threads if p.device == "cpu" else 0):  # the same features on any machine
        for start in tqdm(range(0, len(todo), batch_size), desc=f"encode {modality}",
                          disable=not progress or not todo):
            chunk = todo[start:start + batch_size]
            vectors = encoder.embed([encoder.load(items[i], source_rate) for i in chunk])
            fresh.update({keys[i]: v for i, v in zip(chunk, vectors)})
    if store is not None and fresh:
        store.features.update(fresh)
        store.dirty = True
        store.save()
    table = store.features if store is not None else fresh
    if not items:
        return torch.empty(0)
    return torch.stack([fresh.get(k, table.get(k)) for k in keys])


def record_features(records, root: str | os.PathLike, profile: str | Profile = "auto", progress: bool = True):
    """The features of the records' media, each medium encoded once (and cached), and each record's row:
    ``({"image": [N, D], ...}, [(modality, row) | None, ...])`` — None for a text-only record."""
    paths: dict[str, dict[str, tuple[int, Path]]] = {}  # modality -> media path -> (row, file)
    rows = []
    for r in records:
        inputs = r.inputs
        if not inputs:
            rows.append(None)
            continue
        m = inputs[0]
        table = paths.setdefault(m, {})
        if r.media[m] not in table:
            table[r.media[m]] = (len(table), r.media_path(root, m))  # DatasetError if the path leaves root
        rows.append((m, table[r.media[m]][0]))
    features = {m: encode([file for _, file in table.values()], m, profile, progress=progress)
                for m, table in paths.items()}
    return features, rows


def feature_dims(profile: str | Profile = "auto") -> dict[str, int]:
    """Embedding width of each modality's frozen encoder, read from its config (in ``world.MODALITIES`` order)."""
    return {m: load_encoder(m, profile).model.config.projection_dim for m in world.MODALITIES}
