"""The benchmarks run end to end and report consistent figures (their values are measured, never asserted here)."""

from contextlib import nullcontext
from types import SimpleNamespace

import pytest
import torch

from modaverse_lite import records as ds
from modaverse_lite.bench import (
    _merged,
    _one_by_one,
    _reference_inputs,
    _step_flops,
    bench_align,
    bench_seeds,
    matmul_flops_per_s,
)
from modaverse_lite.encode import load_encoder
from modaverse_lite.model import build_model
from modaverse_lite.train import mixed_precision


def test_bench_align_reports_each_loop_its_stages_and_the_ratios(world_data):
    result = bench_align("tiny", steps=2, batch_size=8, rounds=2)
    assert result["samples"] == 16 and result["steps"] == 2 and result["peak_memory_mb"] > 0
    # measured where and how training runs: on the accelerator's device, at its mixed precision
    assert (result["device"], result["mixed_precision"]) == ("cuda" if torch.cuda.is_available() else "cpu",
                                                             mixed_precision())
    per_s = {name: result[f"{name}_samples_per_s"] for name in ("ours", "naive", "per_step_encoding")}
    assert all(v > 0 for v in per_s.values())
    assert result["ratio"] == pytest.approx(per_s["ours"] / per_s["naive"], rel=0.05)
    assert result["ratio_caching_alone"] == pytest.approx(per_s["ours"] / per_s["per_step_encoding"], rel=0.05)
    stages = result["ms_per_sample"]  # each loop's stages add up to its time per sample
    assert set(stages["ours"]) == {"step"}
    assert set(stages["naive"]) == {"encode_tokenise", "build_inputs", "step"}
    assert set(stages["per_step_encoding"]) == {"encode_tokenise", "step"}
    for name, parts in stages.items():
        assert sum(parts.values()) == pytest.approx(1000 / per_s[name], rel=0.05), name
        assert all(ms > 0 for ms in parts.values()), name
    # FLOP/s: our step's counted FLOPs over its time, against a large matmul timed in the same run
    assert result["ours_flops_per_step"] > 0 and result["ours_flops_per_s"] > 0 and result["matmul_flops_per_s"] > 0
    assert result["ours_flops_ratio"] == pytest.approx(result["ours_flops_per_s"] / result["matmul_flops_per_s"],
                                                       rel=0.05, abs=1e-3)


class _TwoLayers(torch.nn.Module):
    """x → Linear(i, h) → Linear(h, o) → sum, with ``loss(examples, features)`` as ModaVerseLite has it."""

    def __init__(self, i: int, h: int, o: int):
        super().__init__()
        self.first, self.second = torch.nn.Linear(i, h, bias=False), torch.nn.Linear(h, o, bias=False)

    def loss(self, examples, features):
        return self.second(self.first(features["x"])).sum()


def test_step_flops_counts_forward_and_backward_matmuls():
    b, i, h, o = 4, 8, 16, 32
    model = _TwoLayers(i, h, o)
    cpu = SimpleNamespace(device=torch.device("cpu"), autocast=nullcontext)
    flops = _step_flops(model, [], {"x": torch.randn(b, i)}, cpu)
    # forward 2b(ih + ho); backward: both weight gradients 2b(ih + ho) and the gradient into the second layer 2bho
    # (the input needs none)
    assert flops == 2 * b * (2 * i * h + 3 * h * o)
    assert all(p.grad is None for p in model.parameters()), "counting leaves no gradients behind"
    assert matmul_flops_per_s(cpu, n=64, repeats=2) > 0


def test_the_naive_loop_optimises_the_same_loss_as_ours(world_data):
    """The baseline is fair: built sample by sample and scored by the LLM's own loss, a batch gives our loss."""
    model = build_model("tiny", seed=0)
    records = [r for r in ds.read_records(world_data) if r.split == "train"][:12]
    assert {r.inputs[0] if r.inputs else None for r in records} >= {"image", "audio", "video", None}
    encoders = {m: load_encoder(m, "tiny") for m in ("image", "audio", "video")}
    samples = _one_by_one(model, encoders, world_data, records)
    with torch.no_grad():
        theirs = model.llm(**_reference_inputs(model, samples)).loss
        ours = model.loss(*_merged(samples))
    assert theirs.item() == pytest.approx(ours.item(), rel=1e-5)


def test_bench_seeds_trains_each_seed_on_its_own_dataset(tiny_zoo, tmp_path):
    result = bench_seeds("tiny", seeds=(0, 1), steps=2, out_dir=tmp_path, records=300, progress=False)
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    assert all(r["steps"] == 2 for r in result["runs"])
    for seed in (0, 1):
        assert (tmp_path / f"seed{seed}" / "checkpoint" / "modaverse.json").exists()
    for key, s in result["summary"].items():
        values = [r[key] for r in result["runs"]]
        assert s["min"] == min(values) and s["max"] == max(values) and s["min"] <= s["mean"] <= s["max"]
