"""Damaged and careless checkpoints: every one gives a CheckpointError that names the folder and the part.

Each test copies the short run's checkpoint into its own folder, damages one part the way a full disk, a killed
process or a careless hand would, and loads it (or resumes training from it).
"""

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from modaverse_lite import files
from modaverse_lite.errors import CheckpointError
from modaverse_lite.model import INFO_FILE, ModaVerseLite
from modaverse_lite.train import TrainConfig, align_train


@pytest.fixture
def ckpt(short_run, tmp_path):
    """A copy of the short run's checkpoint folder, ours to damage (inside a run folder ``run/``)."""
    return Path(shutil.copytree(short_run.checkpoint, tmp_path / "run" / "checkpoint"))


def _truncate(file: Path) -> None:
    data = file.read_bytes()
    file.write_bytes(data[:len(data) // 2])


def _edit_info(ckpt: Path, change) -> None:
    info = json.loads((ckpt / INFO_FILE).read_text())
    change(info)
    (ckpt / INFO_FILE).write_text(json.dumps(info))


def _set_model(**values):
    return lambda info: info["model"].update(values)


def _base_tokenizer(ckpt: Path) -> None:
    """The base LLM's tokenizer in place of the checkpoint's: no <Media>, </Media>."""
    llm = Path(json.loads((ckpt / INFO_FILE).read_text())["model"]["llm"])
    shutil.rmtree(ckpt / "tokenizer")
    (ckpt / "tokenizer").mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(llm / name, ckpt / "tokenizer" / name)


ADAPTER = Path("adapter") / "adapter_model.safetensors"
DAMAGE = {  # name: (damage(ckpt), what the message must name besides the folder)
    "truncated projections": (lambda c: _truncate(c / "projections.safetensors"), "projections.safetensors"),
    "empty projections": (lambda c: (c / "projections.safetensors").write_bytes(b""), "projections.safetensors"),
    "projections missing": (lambda c: (c / "projections.safetensors").unlink(), "projections.safetensors"),
    "projections of another shape": (lambda c: save_file({"image.linear.weight": torch.zeros(2, 2)},
                                                         c / "projections.safetensors"), "projections.safetensors"),
    "truncated adapter": (lambda c: _truncate(c / ADAPTER), "adapter_model.safetensors"),
    "adapter missing": (lambda c: (c / ADAPTER).unlink(), "adapter_model.safetensors"),
    "adapter without its weights": (lambda c: save_file({"unrelated": torch.zeros(1)}, c / ADAPTER),
                                    "adapter_model.safetensors"),
    "truncated modaverse.json": (lambda c: _truncate(c / INFO_FILE), INFO_FILE),
    "modaverse.json not an object": (lambda c: (c / INFO_FILE).write_text("[1, 2]"), INFO_FILE),
    "no model key": (lambda c: _edit_info(c, lambda info: info.pop("model")), "'model'"),
    "model not an object": (lambda c: _edit_info(c, lambda info: info.update(model="linear")), "'model'"),
    "feature_dims a string": (lambda c: _edit_info(c, _set_model(feature_dims="x")), "feature_dims"),
    "feature_dims negative": (lambda c: _edit_info(c, _set_model(feature_dims={"image": -3})), "feature_dims"),
    "video_tokens a string": (lambda c: _edit_info(c, _set_model(video_tokens="4")), "video_tokens"),
    "video_tokens not dividing frames": (lambda c: _edit_info(c, _set_model(video_tokens=3)), "video_tokens"),
    "media_tokens a bool": (lambda c: _edit_info(c, _set_model(media_tokens=True)), "media_tokens"),
    "llm a number": (lambda c: _edit_info(c, _set_model(llm=5)), "llm"),
    "llm gone": (lambda c: _edit_info(c, _set_model(llm="/nonexistent/llm", llm_reference="")), "/nonexistent/llm"),
    "llm_reference a number": (lambda c: _edit_info(c, _set_model(llm_reference=5)), "llm_reference"),
    "aligner a list": (lambda c: _edit_info(c, _set_model(aligner=["linear"])), "aligner"),
    "lora a string": (lambda c: _edit_info(c, _set_model(lora="x")), "lora"),
    "lora rank a string": (lambda c: _edit_info(c, lambda info: info["model"]["lora"].update(r="8")), "lora"),
    "lora target_modules a number": (lambda c: _edit_info(c, lambda info: info["model"]["lora"].update(
        target_modules=5)), "lora"),
    "tokenizer folder gone": (lambda c: shutil.rmtree(c / "tokenizer"), "tokenizer"),
    "truncated tokenizer.json": (lambda c: _truncate(c / "tokenizer" / "tokenizer.json"), "tokenizer"),
    "tokenizer without the media tokens": (_base_tokenizer, "<Media>"),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_checkpoint_names_the_folder_and_the_part(ckpt, case):
    damage, part = DAMAGE[case]
    damage(ckpt)
    with pytest.raises(CheckpointError) as err:
        ModaVerseLite.from_pretrained(ckpt)
    message = str(err.value)
    assert str(ckpt) in message and part in message, message


class _Trap:
    """Unpickling this creates ``marker``: proof that a loader ran pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("part", ["projections.safetensors", str(ADAPTER)])
def test_a_pickle_where_safetensors_belong_is_never_unpickled(ckpt, tmp_path, part):
    marker = tmp_path / "unpickled"
    (ckpt / part).write_bytes(pickle.dumps({"weights": _Trap(marker)}))
    pickle.loads((ckpt / part).read_bytes())  # the trap works...
    assert marker.exists()
    marker.unlink()
    with pytest.raises(CheckpointError, match=Path(part).name):  # ...and the loader never springs it
        ModaVerseLite.from_pretrained(ckpt)
    assert not marker.exists()


# ---- resuming a run from a damaged checkpoint ------------------------------------------------------------------
def _resume(ckpt, world_data):
    """Continue the short run (seed 0, same data) for one more step."""
    return align_train(TrainConfig.from_profile("tiny", data_dir=world_data, out_dir=ckpt.parent, steps=41,
                                                eval_every=41, eval_items=5, progress=False))


RESUME_DAMAGE = {
    "optimizer.safetensors missing": (lambda c: (c / "optimizer.safetensors").unlink(), "optimizer.safetensors"),
    "optimizer.json missing": (lambda c: (c / "optimizer.json").unlink(), "optimizer.json"),
    "truncated optimizer.safetensors": (lambda c: _truncate(c / "optimizer.safetensors"), "optimizer.safetensors"),
    "truncated optimizer.json": (lambda c: _truncate(c / "optimizer.json"), "optimizer.json"),
    "optimizer of another model": (lambda c: save_file({"0.exp_avg": torch.zeros(3)}, c / "optimizer.safetensors"),
                                   "optimizer"),
    "step a string": (lambda c: _edit_info(c, lambda info: info.update(step="40")), "step"),
    "step missing": (lambda c: _edit_info(c, lambda info: info.pop("step")), "step"),
    "history not pairs": (lambda c: _edit_info(c, lambda info: info.update(history=[1, 2, 3])), "history"),
    "history shorter than step": (lambda c: _edit_info(c, lambda info: info.update(history=info["history"][:5])),
                                  "history"),
    "evals not a list": (lambda c: _edit_info(c, lambda info: info.update(evals="x")), "evals"),
    "truncated modaverse.json": (lambda c: _truncate(c / INFO_FILE), INFO_FILE),
    "modaverse.json missing": (lambda c: (c / INFO_FILE).unlink(), INFO_FILE),  # not a reason to start again
    "projections missing": (lambda c: (c / "projections.safetensors").unlink(), "projections.safetensors"),
}


@pytest.mark.parametrize("case", RESUME_DAMAGE)
def test_resuming_from_a_damaged_checkpoint_names_the_folder_and_the_part(ckpt, world_data, case):
    damage, part = RESUME_DAMAGE[case]
    damage(ckpt)
    with pytest.raises(CheckpointError) as err:
        _resume(ckpt, world_data)
    message = str(err.value)
    assert str(ckpt) in message and part in message, message
    assert "--fresh" in message or "train it again" in message, message


def test_a_run_killed_between_the_two_renames_resumes_from_the_old_checkpoint(world_data, tmp_path, kill_training_at):
    """``atomic_dir`` swaps a checkpoint in with two renames; killed between them, the run folder holds only
    ``.checkpoint.old`` (and the new folder under its temporary name). The next run continues from it."""
    config = dict(data_dir=world_data, steps=8, eval_every=4, eval_items=5, progress=False, seed=2)
    straight = align_train(TrainConfig.from_profile("tiny", out_dir=tmp_path / "a", **config))

    kill_training_at(6)  # after the step-4 checkpoint
    with pytest.raises(KeyboardInterrupt):
        align_train(TrainConfig.from_profile("tiny", out_dir=tmp_path / "b", **config))
    run = tmp_path / "b"
    (run / "checkpoint").rename(files.old_dir(run / "checkpoint"))  # the first rename happened, not the second
    (run / ".checkpoint.x1y2.tmp").mkdir()  # the new checkpoint, never renamed in
    assert json.loads((run / ".checkpoint.old" / INFO_FILE).read_text())["step"] == 4

    resumed = align_train(TrainConfig.from_profile("tiny", out_dir=run, **config))
    assert [s for s, _ in resumed.history] == list(range(1, 9))
    assert [loss for _, loss in resumed.history] == pytest.approx([loss for _, loss in straight.history], rel=1e-4)
    assert [e["step"] for e in resumed.evals] == [4, 8]
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint"]
    assert json.loads((run / "checkpoint" / INFO_FILE).read_text())["step"] == 8
