"""The any-to-any assistant: an instruction (and its media) in, text and media files out.

Every part of the road has its own module; this one only walks it, once per request::

    medium ──encode (frozen)──▶ features ──┐
    instruction ──tokenize────────────────┴──▶ aligned LLM ──generate──▶ meta-response
                                                                             │ meta.parse + dispatch
                                                                             ▼
                                                 text answer  |  image / audio / video files under out_dir

    >>> assistant = Assistant("runs/align")                      # a run folder or its checkpoint folder
    >>> reply = assistant("Draw a red circle.")
    >>> reply.meta_response
    'Modality: [IMAGE] Prompt: a red circle'
    >>> reply.outputs[0].path
    PosixPath('runs/outputs/image-20240101-120000-0000-1a2b3c4d.png')

Media inputs are a path, or an array in this package's convention (``media.py``): an image ``(H, W, 3)`` uint8
(or a PIL image), a video ``(T, H, W, 3)`` uint8, audio ``(n,)`` float32 — audio arrays are taken to be at the
world's rate, ``world.SAMPLE_RATE`` (16 kHz), unless given as an ``(array, rate)`` pair. Several media go in one
request (``assistant(text, image=..., audio=...)``), each in its own ``<Media> … </Media>`` block, in the pair's
order (image, audio, video), as training spliced them. The checkpoint knows which media it was trained on
(``trained_inputs``): a request with a medium, or a combination of media, it never saw is refused with a
``MediaError`` naming it, rather than answered blind or with one medium silently dropped. A missing or corrupt
file raises ``MediaError`` naming it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import meta, world
from .dataset import default_dataset
from .dispatch import Dispatcher, Output, Registry, registry_for
from .encode import encode, feature_dims
from .errors import CheckpointError, MediaError, ModaVerseError
from .files import default_run_dir
from .meta import MetaResponse
from .model import ModaVerseLite, checkpoint_info, find_checkpoint
from .profiles import Profile, get_profile
from .train import TrainConfig, align_train

if TYPE_CHECKING:
    import torch

MEDIA = meta.MEDIA  # ("image", "audio", "video")
#: Said with every reply of the tiny profile: its encoders and LLM were pretrained on the synthetic world only.
TINY_CAVEAT = ("the tiny model knows only the synthetic world (coloured shapes, tones, moving shapes): a real photo, "
               "sound or clip, or a request outside the world, still gets an answer in world words; the gpu "
               "profile's pretrained models know real media")


@dataclass(frozen=True)
class Reply:
    """One answer: the raw meta-response, how it was read, and what the dispatcher made of it."""

    instruction: str
    meta_response: str
    parsed: MetaResponse
    outputs: list[Output]
    seconds: float
    medium: str | None = None  # the input media's modalities ("image", "image+audio"), None for text only
    caveats: tuple[str, ...] = ()  # what to keep in mind about every answer of this model (TINY_CAVEAT)

    @property
    def paths(self) -> list[Path]:
        """The files written, in segment order."""
        return [o.path for o in self.outputs if o.path is not None]

    @property
    def text(self) -> str:
        """The text segments, joined by new lines ("" when the answer is media only)."""
        return "\n".join(o.text for o in self.outputs if o.text is not None)

    def to_dict(self) -> dict:
        """Plain JSON-able values (what ``chat --json`` prints)."""
        return {"instruction": self.instruction, "medium": self.medium, "meta_response": self.meta_response,
                "ok": self.parsed.ok, "notes": list(self.parsed.notes), "caveats": list(self.caveats),
                "seconds": round(self.seconds, 3),
                "outputs": [{"modality": o.modality, "path": str(o.path) if o.path else None, "prompt": o.prompt,
                             "generator": o.generator, "text": o.text, "error": o.error,
                             "seconds": round(o.seconds, 3)} for o in self.outputs]}

    def format(self) -> str:
        """A few lines for a terminal: the meta-response, then one line per output."""
        lines = [self.meta_response]
        lines += [f"note: {note}" for note in (*self.parsed.notes, *self.caveats)]
        for o in self.outputs:
            if o.error:
                lines.append(f"[{o.modality}] error: {o.error}")
            elif o.path is not None:
                lines.append(f"[{o.modality}] {o.path}")
            else:
                lines.append(f"[text] {o.text}")
        return "\n".join(lines)


def _media_argument(modality: str, value) -> tuple[object, int | None]:
    """(item, source_rate) for ``encode``: audio may come as ``(array, rate)``; a bare audio array is at 16 kHz."""
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        if not path.is_file():
            raise MediaError(f"{path}: no such {modality} file" + (" (it is a directory)" if path.is_dir() else ""))
        return path, None
    if modality == "audio":
        if isinstance(value, tuple):
            if len(value) != 2:
                raise MediaError(f"audio must be a path, an array or an (array, sample_rate) pair; got a tuple of "
                                 f"{len(value)} items")
            return value[0], value[1]
        return value, world.SAMPLE_RATE
    return value, None


class Assistant:
    """A trained checkpoint, its frozen encoders and a generator registry, loaded once and called many times.

    ``checkpoint`` is a run folder or its ``checkpoint`` folder. ``profile`` defaults to the one the checkpoint
    was trained with (its encoders must be the ones the projections were trained on); ``registry`` defaults to
    ``dispatch.registry_for(profile)`` — pass another to draw with other generators, e.g. the tiny diffusers
    pipelines. Files are written under ``out_dir``, each with a fresh name.
    """

    def __init__(self, checkpoint: str | os.PathLike, out_dir: str | os.PathLike = "runs/outputs",
                 registry: Registry | None = None, profile: str | Profile | None = None,
                 max_new_tokens: int | None = None):
        info = checkpoint_info(checkpoint)
        self._attach(ModaVerseLite.from_pretrained(checkpoint), info, Path(checkpoint), profile or info["profile"],
                     out_dir, registry, max_new_tokens)

    @classmethod
    def from_model(cls, model: ModaVerseLite, profile: str | Profile, data_dir: str | os.PathLike,
                   out_dir: str | os.PathLike = "runs/outputs", registry: Registry | None = None,
                   max_new_tokens: int | None = None) -> Assistant:
        """An assistant around a model held in memory, trained on ``data_dir`` and never saved (a comparison's
        run: ``claim.py``); everything else as for a checkpoint."""
        assistant = cls.__new__(cls)
        info = {"profile": get_profile(profile).name, "data_dir": str(data_dir)}
        assistant._attach(model, info, None, profile, out_dir, registry, max_new_tokens)
        return assistant

    def _attach(self, model, info: dict, checkpoint: Path | None, profile, out_dir, registry, max_new_tokens):
        self.model, self.info, self.checkpoint = model, info, checkpoint
        self.profile = get_profile(profile)
        dims = feature_dims(self.profile)  # loads the frozen encoders once
        trained = self.model.feature_dims
        if any(dims.get(m) != d for m, d in trained.items()):
            raise CheckpointError(f"{checkpoint or 'the model'}: its projections were trained on {trained}-wide "
                                  f"features, but the {self.profile.name!r} profile's encoders give {dims}; use the "
                                  f"profile it was trained with ({self.info['profile']!r})")
        if self.profile.device != "cpu":
            self.model.to(self.profile.device)
        self.registry = registry if registry is not None else registry_for(self.profile)
        self.dispatcher = Dispatcher(self.registry, out_dir)
        self.max_new_tokens = int(max_new_tokens or self.profile.train.max_new_tokens)
        #: the media combinations the checkpoint was trained on ("image", "image+audio", …); a checkpoint older than
        #: this record was trained on each medium alone
        self.trained_inputs = list(self.info.get("inputs") or [m for m in MEDIA if m in trained])

    @property
    def out_dir(self) -> Path:
        return self.dispatcher.out_dir

    def features(self, modality: str, item) -> torch.Tensor:
        """The frozen encoder's features of one medium (a path, an array, or audio ``(array, rate)``): ``[1, ...]``."""
        if modality not in MEDIA:
            raise MediaError(f"unknown medium {modality!r}; expected one of {MEDIA}")
        item, rate = _media_argument(modality, item)
        # cache=False: a user's file is read once; the dataset cache is for training sets
        return encode([item], modality, self.profile, cache=False, source_rate=rate, progress=False,
                      kind=getattr(self.model.projections, "features", "pooled"))  # what the input side reads

    def meta_response(self, instruction: str, modality: str | None = None, features=None,
                      more: dict | None = None) -> str:
        """The LLM's raw answer to one instruction, with the features of its medium if it has one (``more``: the
        features of later media, by modality, spliced in after it in that order)."""
        more = dict(more or {})
        example = self.model.tokenize(instruction, modality, 0 if modality else -1,
                                      more=tuple((m, 0) for m in more))
        table = {modality: features, **more} if modality else {}
        return self.model.generate([example], table, self.max_new_tokens)[0]

    def check_media(self, modalities: list[str]) -> None:
        """Refuse media this checkpoint was never trained on: MediaError naming the medium (or the combination)."""
        trained = self.trained_inputs
        for m in modalities:
            if not any(m in t.split("+") for t in trained):
                raise MediaError(f"{self.checkpoint} was never trained on a {m} input (it was trained on "
                                 f"{', '.join(trained) or 'text only'}); ask without the {m}, or train on a dataset "
                                 f"with {m} records")
        combination = "+".join(modalities)
        if len(modalities) > 1 and combination not in trained:
            raise MediaError(f"{self.checkpoint} was never trained on {' and '.join(modalities)} together (it was "
                             f"trained on {', '.join(trained)}); pass one medium, or use a checkpoint trained with "
                             f"every pair (the 'demos' profile)")

    def __call__(self, instruction: str, image=None, audio=None, video=None, seed: int = 0) -> Reply:
        """Answer ``instruction`` about its media (none, one, or a combination the checkpoint was trained on);
        media answers — every segment of the answer — are written under ``out_dir``."""
        start = time.perf_counter()
        if not isinstance(instruction, str) or not instruction.strip():
            raise ModaVerseError(f"an instruction must be a non-empty string, got {instruction!r}")
        given = {m: v for m, v in (("image", image), ("audio", audio), ("video", video)) if v is not None}
        self.check_media(list(given))
        features = {m: self.features(m, v) for m, v in given.items()}
        first = next(iter(given), None)
        text = self.meta_response(instruction.strip(), first, features.pop(first, None), features)
        parsed = meta.parse(text)
        outputs = self.dispatcher(parsed, seed=seed)
        caveats = (TINY_CAVEAT,) if self.profile.name in ("tiny", "demos") else ()
        return Reply(instruction, text, parsed, outputs, time.perf_counter() - start, "+".join(given) or None,
                     caveats)

    def __repr__(self) -> str:
        return (f"Assistant(checkpoint={str(self.checkpoint)!r}, profile={self.profile.name!r}, "
                f"registry={self.registry!r}, out_dir={str(self.out_dir)!r})")


def default_checkpoint(profile: str | Profile = "auto", seed: int = 0, steps: int | None = None) -> Path:
    """Notebook 02's checkpoint, in ``files.default_run_dir(profile, seed)``; trained there first if it is missing.

    An existing checkpoint is used as it is, whatever it was trained with (notebook 02 decides that); only when
    there is none does this train one, with ``steps`` steps (None: the profile's setting) on the default dataset,
    and it says so on stdout, so that a notebook shows it as plain output.
    """
    run = default_run_dir(profile, seed)
    try:
        return find_checkpoint(run)  # the last good one, even from a run killed in the middle of a save
    except CheckpointError:
        pass
    steps = steps or get_profile(profile).train.steps
    print(f"No checkpoint in {run}: notebook 02 writes it there, and it is not there (on Colab every notebook is a "
          f"new runtime, with an empty disk, unless mv.use_drive_cache() keeps the cache on Google Drive). Training "
          f"one here now, {steps} steps: it is not notebook 02's run.", flush=True)
    config = TrainConfig.from_profile(profile, data_dir=default_dataset(profile, seed), out_dir=run, seed=seed,
                                      steps=steps)
    return Path(align_train(config).checkpoint)


def world_example(modality: str, attributes: dict[str, str] | str, seed: int = 0) -> np.ndarray | tuple:
    """A world medium to give the assistant: ``world_example("image", "a red circle")`` → an image array.

    ``attributes`` is a dict or a world caption; audio comes back as ``(array, world.SAMPLE_RATE)``.
    """
    if isinstance(attributes, str):
        found = world.attributes_of(attributes, modality)
        if found is None:
            raise MediaError(f"{attributes!r} is not a world {modality} caption (e.g. "
                             f"{world.caption(modality, {a: world.VALUES[a][0] for a in world.ATTRIBUTES[modality]})!r}"
                             ")")
        attributes = found
    data = world.render(modality, attributes, seed=seed).data
    return (data, world.SAMPLE_RATE) if modality == "audio" else data
