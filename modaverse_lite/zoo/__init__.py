"""The tiny zoo: scaffolding, not ModaVerse — the tiny profile's checkpoints, built here, in hub layout.

No weights can be downloaded in a classroom without internet (or in CI), so the tiny profile builds its own, with
real transformers and diffusers classes and tiny configs:

* ``clip``, ``clap``, ``llm`` — encoders and a causal LM pretrained here on the synthetic world (``pretrain.py``);
* ``sd``, ``audioldm2``, ``text2video`` — diffusers pipelines with untrained tiny parts (``diffusers.py``);
* the world's corpora and one tokenizer trainer for all of them (``text.py``);
* ``hub-qwen``, ``hub-clip``, ``hub-clap``, ``hub-sd-turbo``, ``hub-audioldm2``, ``hub-text2video`` — the gpu
  profile's checkpoints with their real hub configs and layouts, random weights and fewer layers, for the
  ``hubshape`` test profile (``hubshape.py``; built only when that profile asks for them).

Each entry is saved into ``<cache>/zoo/<name>-<recipe hash>/`` and loaded back with the same
``from_pretrained(path)`` calls that load hub checkpoints; a profile names one as ``"zoo:NAME"`` and
``checkpoint(profile, role)`` resolves it. A folder is rebuilt only when its recipe, the corpus or the code that
builds it changes. The cache is ``files.cache_dir()`` (``$MODAVERSE_CACHE``).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import files, world
from ..errors import CheckpointError
from ..profiles import Profile, get_profile
from . import diffusers, hubshape, pretrain, text
from .pretrain import pooled

__all__ = ["ENTRIES", "HUBSHAPE_ENTRIES", "RECIPE_VERSION", "build_all", "checkpoint", "describe", "ensure", "path",
           "fixed_threads", "pooled", "recipe_hash"]

RECIPE_VERSION = 1
BUILD_THREADS = 2  # every entry is built with this many CPU threads, on any machine (see ``fixed_threads``)
ENTRIES = ("clip", "clap", "llm", "sd", "audioldm2", "text2video")  # the tiny profile's (``build_all``)
HUBSHAPE_ENTRIES = hubshape.ENTRIES  # the hubshape profile's, built on first use

_BUILDERS = {"clip": pretrain.build_clip, "clap": pretrain.build_clap, "llm": pretrain.build_llm}  # (out, recipe)
_PIPELINES = {"sd": diffusers.build_text_to_image, "audioldm2": diffusers.build_text_to_audio,  # (out, seed)
              "text2video": diffusers.build_text_to_video}


def recipe_hash(name: str) -> str:
    """Names everything that decides an entry's weights: its recipe, its corpus, and the code that builds it
    (text.py, pretrain.py and world.py; diffusers.py too for the pipelines; hubshape.py for the hub-shaped ones)."""
    code = inspect.getsource(text) + inspect.getsource(pretrain) + inspect.getsource(world)
    if name not in pretrain.RECIPES:
        code += inspect.getsource(diffusers)
    if name in hubshape.RECIPE:
        code += inspect.getsource(hubshape)
    # the text this entry learns from: the LLMs (tiny and hub-shaped) read the world corpus, the others captions
    lines = text.world_corpus() if name == "llm" or name in hubshape.RECIPE else text.caption_corpus()
    corpus = hashlib.sha256("\n".join(lines).encode()).hexdigest()[:10]
    recipe = {"version": RECIPE_VERSION, "name": name, "recipe": _recipe(name), "corpus": corpus,
              "code": hashlib.sha256(code.encode()).hexdigest()}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:10]


def _recipe(name: str) -> dict:
    return pretrain.RECIPES.get(name) or hubshape.RECIPE.get(name, {})


def path(name: str) -> Path:
    """The folder of zoo entry ``name`` for the current recipe (it may not be built yet)."""
    if name not in ENTRIES + HUBSHAPE_ENTRIES:
        raise CheckpointError(f"unknown zoo entry {name!r}; expected one of {ENTRIES + HUBSHAPE_ENTRIES}")
    return files.cache_dir() / "zoo" / f"{name}-{recipe_hash(name)}"


def ensure(name: str, force: bool = False) -> Path:
    """The folder of zoo entry ``name``, built first if it is missing (or ``force``).

    The entry is built in a temporary folder that replaces the final one only when complete, with a ``DONE`` file
    last: an interrupted build leaves nothing under the final name. One build per entry at a time: a process that
    finds another building it waits for that build's lock, then uses the finished entry instead of building again.
    """
    target = path(name)
    if (target / "DONE").exists() and not force:
        return target
    with files.locked(_lock_folder(target), wait=-1, what=f"zoo entry {name!r}"):
        if (target / "DONE").exists() and not force:  # built by the process we waited for
            return target
        with files.atomic_dir(target) as tmp, fixed_threads(BUILD_THREADS):
            if name in _BUILDERS:
                _BUILDERS[name](tmp, pretrain.RECIPES[name])
            elif name in hubshape.BUILDERS:
                hubshape.BUILDERS[name](tmp, hubshape.RECIPE[name])
            else:
                _PIPELINES[name](tmp, seed=0)
            (tmp / "DONE").write_text(json.dumps({"recipe": _recipe(name), "hash": recipe_hash(name)}))
    return target


@contextlib.contextmanager
def fixed_threads(n: int):
    """Run the block with ``n`` CPU threads (0: leave torch's choice), then restore the count.

    A float sum split over 2 threads rounds differently from one split over 8, and a few minutes of training
    amplify that into different scores: the tiny profile's figures move with the machine's core count unless the
    count is fixed. ``$OMP_NUM_THREADS``, when set, is the user's explicit choice and wins (``torchrun`` sets it
    to 1 for each of several processes).
    """
    before = torch.get_num_threads()
    if n and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _lock_folder(target: Path) -> Path:
    """What ``files.locked`` locks for entry folder ``target``: a name under ``<cache>/locks/zoo/``, so the lock
    files stay out of ``zoo/`` (which holds only entries)."""
    return files.cache_dir() / "locks" / "zoo" / target.name


def build_all(force: bool = False, names: tuple[str, ...] = ENTRIES) -> dict[str, Path]:
    """Build (or find in the cache) every zoo entry; returns name → folder."""
    return {name: ensure(name, force=force) for name in tqdm(names, desc="tiny zoo")}


def checkpoint(profile: str | Profile, role: str) -> str:
    """The hub id or local folder that fills ``role`` in ``profile``; a ``"zoo:NAME"`` entry is built on first use."""
    ref = get_profile(profile).reference(role)
    if ref.startswith("zoo:"):
        return str(ensure(ref[len("zoo:"):]))
    return ref


def describe() -> list[dict]:
    """One row per zoo entry: name, folder, built?, size on disk — for notebooks and the CLI."""
    rows = []
    for name in ENTRIES:
        p = path(name)
        size = sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.exists() else 0
        rows.append({"name": name, "path": str(p), "built": (p / "DONE").exists(), "megabytes": round(size / 2**20, 2)})
    return rows
