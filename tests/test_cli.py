"""The command line a headless user (or the README) types."""

import json

from modaverse_lite.__main__ import main


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def test_chat_prints_the_meta_response_and_the_files(short_run, tmp_path, capsys):
    run_dir = str(short_run.checkpoint.parent)
    assert main(["chat", "--checkpoint", run_dir, "Draw a red circle.", "--out", str(tmp_path), "--json"]) == 0
    reply = _json(capsys)
    assert reply["meta_response"].startswith("Modality:") and reply["outputs"]
    for output in reply["outputs"]:
        assert output["path"] is None or output["path"].startswith(str(tmp_path))
    assert main(["chat", "--checkpoint", run_dir, "Describe this.", "--image", str(tmp_path / "none.png")]) == 2
    assert "none.png" in capsys.readouterr().err


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["chat", "--checkpoint", str(tmp_path), "hello"]) == 2
    assert str(tmp_path) in capsys.readouterr().err


def test_eval_roundtrip_is_keyed_by_modality(short_run, capsys):
    assert main(["eval", "roundtrip", "--checkpoint", str(short_run.checkpoint), "--n", "2", "--json"]) == 0
    assert set(_json(capsys)) == {"image", "audio", "video"}


def test_bench_dispatch_and_zoo(tiny_zoo, capsys):
    assert main(["bench", "dispatch", "--n", "50", "--json"]) == 0
    assert _json(capsys)["per_request_ms"] > 0
    assert main(["zoo", "--json"]) == 0
    assert set(_json(capsys)) >= {"clip", "clap", "llm"}


def test_train_prints_one_json_object(world_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--profile", "tiny", "--out", str(out), "--steps", "3", "--json"]) == 0
    summary = _json(capsys)
    assert summary["steps"] == 3 and {"overall", "per_pair", "unseen", "train_seconds"} <= set(summary)
    assert (out / "checkpoint" / "modaverse.json").exists()


def test_bench_seeds_prints_one_json_object(tiny_zoo, capsys, monkeypatch, tmp_path):
    from modaverse_lite import bench

    real = bench.bench_seeds

    def small(profile, seeds, steps, progress):  # the CLI's arguments reach bench_seeds; a small run stands in
        return real(profile, seeds=seeds, steps=steps, out_dir=tmp_path, records=200, progress=progress)

    monkeypatch.setattr(bench, "bench_seeds", small)
    assert main(["bench", "seeds", "--seeds", "3", "--steps", "2", "--json"]) == 0
    result = _json(capsys)
    assert result["seeds"] == [3] and result["runs"][0]["steps"] == 2 and "unseen_exact" in result["summary"]
