"""The benchmarks run end to end and report consistent figures (their values are measured, never asserted here)."""

import pytest

from modaverse_lite.bench import bench_align, bench_seeds


def test_bench_align_reports_both_loops_and_their_ratio(world_data):
    result = bench_align("tiny", steps=2, batch_size=8)
    assert result["samples"] == 16 and result["steps"] == 2
    ours, naive = result["ours_samples_per_s"], result["naive_samples_per_s"]
    assert ours > 0 and naive > 0 and result["peak_memory_mb"] > 0
    assert result["ratio"] == pytest.approx(ours / naive, rel=0.05)
    per_sample = result["ms_per_sample"]  # ours: the step alone; naive: the same step plus the per-sample work
    assert per_sample["ours_step"] == pytest.approx(1000 / ours, rel=0.05)
    assert per_sample["naive_step"] + per_sample["naive_encode_tokenise"] == pytest.approx(1000 / naive, rel=0.05)
    assert per_sample["naive_encode_tokenise"] > 0


def test_bench_seeds_trains_each_seed_on_its_own_dataset(tiny_zoo, tmp_path):
    result = bench_seeds("tiny", seeds=(0, 1), steps=2, out_dir=tmp_path, records=300, progress=False)
    assert [r["seed"] for r in result["runs"]] == [0, 1]
    assert all(r["steps"] == 2 for r in result["runs"])
    for seed in (0, 1):
        assert (tmp_path / f"seed{seed}" / "checkpoint" / "modaverse.json").exists()
    for key, s in result["summary"].items():
        values = [r[key] for r in result["runs"]]
        assert s["min"] == min(values) and s["max"] == max(values) and s["min"] <= s["mean"] <= s["max"]
