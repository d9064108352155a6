"""Several training processes are one run: ``torchrun --nproc_per_node 2`` on the CPU (gloo), checked against one
process that takes the same batches by gradient accumulation."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from modaverse_lite.model import build_model
from modaverse_lite.train import TrainConfig, align_train

WORKER = Path(__file__).with_name("ddp_worker.py")
SETTINGS = dict(steps=4, batch_size=4, lr=3e-3, warmup_steps=1, eval_every=2, eval_items=3, progress=False, seed=3)


@pytest.fixture(scope="module")
def two_processes(world_data, tmp_path_factory):
    """One run of 2 processes, each with batch 4 and no accumulation (a global batch of 8 per optimizer step)."""
    root = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(WORKER.parents[1]), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(WORKER),
               str(world_data), str(root / "run"), str(root), json.dumps({**SETTINGS, "grad_accum": 1})]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((root / f"rank{r}.json").read_text()) for r in (0, 1)]
    weights = [load_file(root / f"rank{r}.safetensors") for r in (0, 1)]
    return ranks, weights, root


def test_two_processes_hold_identical_weights(two_processes):
    ranks, weights, _ = two_processes
    assert [r["processes"] for r in ranks] == [2, 2] and "MULTI_CPU" in ranks[0]["distributed_type"]
    assert [r["steps"] for r in ranks] == [SETTINGS["steps"]] * 2  # steps count optimizer steps, per process too
    assert weights[0].keys() == weights[1].keys() and len(weights[0]) > 4
    diff = max((weights[0][k] - weights[1][k]).abs().max().item() for k in weights[0])
    assert diff == 0.0, f"the ranks' trainable weights differ by up to {diff}: gradients were not averaged"
    assert ranks[0]["history"] == ranks[1]["history"]  # each logs the loss over both processes' batches


def test_only_the_main_process_saves_and_evaluates(two_processes):
    ranks, _, root = two_processes
    assert ranks[0]["calls"]["save"] == 3 and ranks[0]["calls"]["evaluate"] == 3  # steps 2 and 4, and the end
    assert ranks[1]["calls"] == {"save": 0, "evaluate": 0}
    assert ranks[0]["metrics"] and not ranks[1]["metrics"]
    assert [r["main"] for r in ranks] == [True, False]  # the command line prints the main process's report only
    assert (root / "run" / "checkpoint" / "modaverse.json").exists()


def test_two_processes_match_one_with_the_same_global_batch(two_processes, world_data, tmp_path):
    """One process, batch 4, accumulating 2 micro-batches: the same 8 examples per optimizer step, in the same
    shares, as 2 processes of batch 4 — the same run, within float noise."""
    ranks, weights, _ = two_processes
    one = align_train(TrainConfig.from_profile("tiny", data_dir=world_data, out_dir=tmp_path, grad_accum=2,
                                               **SETTINGS))
    single = {name: p.detach() for name, p in one.model.named_parameters() if p.requires_grad}
    assert single.keys() == weights[0].keys()
    moved = max((single[k] - one_start).abs().max().item() for k, one_start in _initial(one.model).items())
    diff = max((single[k] - weights[0][k]).abs().max().item() for k in single)
    assert moved > 1e-3 and diff < 1e-5, f"trained {moved}, but the runs differ by up to {diff}"
    assert one.lrs == pytest.approx(ranks[0]["lrs"], rel=1e-6)
    assert [loss for _, loss in one.history] == pytest.approx([loss for _, loss in ranks[0]["history"]], rel=1e-4)


def _initial(model) -> dict[str, torch.Tensor]:
    """The trainable weights a fresh model of the same seed starts from."""
    fresh = build_model("tiny", seed=SETTINGS["seed"])
    return {name: p.detach() for name, p in fresh.named_parameters() if p.requires_grad}
