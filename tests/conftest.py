"""Shared fixtures. The tiny zoo and the default dataset are built once into $MODAVERSE_CACHE (the Makefile sets
it to the repo's .cache/; running pytest directly uses the same folder) and reused by every test and notebook."""

import os
from pathlib import Path

os.environ.setdefault("MODAVERSE_CACHE", str(Path(__file__).resolve().parents[1] / ".cache"))

import pytest


@pytest.fixture(scope="session")
def tiny_zoo():
    """The tiny profile's encoders and LLM, built (or found in the cache) once per session."""
    from modaverse_lite import zoo

    return zoo.build_all(names=("clip", "clap", "llm"))


@pytest.fixture(scope="session")
def world_data(tiny_zoo):
    """The default tiny world dataset (built once into the cache)."""
    from modaverse_lite.dataset import default_dataset

    return default_dataset("tiny", seed=0)


@pytest.fixture(scope="session")
def short_run(world_data, tmp_path_factory):
    """A short align-train run (not accurate; enough to exercise saving, loading and inference)."""
    from modaverse_lite.train import TrainConfig, align_train

    out = tmp_path_factory.mktemp("short_run")
    return align_train(TrainConfig.from_profile("tiny", data_dir=world_data, out_dir=out, steps=40, eval_every=20,
                                                eval_items=30, progress=False))


@pytest.fixture
def kill_training_at(monkeypatch):
    """``kill_training_at(n)``: the n-th call of ``ModaVerseLite.loss`` raises KeyboardInterrupt, as a Ctrl-C or a
    kill in the middle of a run would; every other call trains as usual (so the next run resumes normally)."""
    from modaverse_lite.model import ModaVerseLite

    real = ModaVerseLite.loss

    def arm(n: int) -> None:
        calls = []

        def loss(self, examples, features, *weight):
            calls.append(1)
            if len(calls) == n:
                raise KeyboardInterrupt
            return real(self, examples, features, *weight)

        monkeypatch.setattr(ModaVerseLite, "loss", loss)

    return arm
