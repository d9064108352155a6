import pytest

from modaverse_lite import profiles, zoo
from modaverse_lite.dataset import _split_sizes
from modaverse_lite.errors import ProfileError
from modaverse_lite.instructions import pairs_of


def test_auto_picks_tiny_without_cuda(monkeypatch):
    monkeypatch.setattr(profiles, "cuda_available", lambda: False)
    assert profiles.get_profile("auto").name == "tiny"
    monkeypatch.setattr(profiles, "cuda_available", lambda: True)
    assert profiles.get_profile("auto").name == "gpu"


def test_every_checkpoint_is_named_in_one_place():
    gpu = profiles.get_profile("gpu")
    for role in profiles.CHECKPOINT_FIELDS:
        assert "/" in getattr(gpu.checkpoints, role), f"gpu {role} should be a hub id"
    tiny = profiles.get_profile("tiny")
    assert tiny.checkpoints.image_encoder == "zoo:clip" and tiny.device == "cpu"


def test_unknown_names_are_clear():
    with pytest.raises(ProfileError, match="'huge'"):
        profiles.get_profile("huge")
    with pytest.raises(ProfileError, match="unknown checkpoint role 'vocoder'"):
        profiles.TINY.reference("vocoder")


def test_hub_ids_pass_through_and_with_changes_one_field():
    gpu = profiles.get_profile("gpu")
    assert zoo.checkpoint(gpu, "llm") == gpu.reference("llm") == "Qwen/Qwen2.5-0.5B-Instruct"
    changed = gpu.with_(video_tokens=2)
    assert changed.video_tokens == 2 and gpu.video_tokens == 4 and changed.checkpoints == gpu.checkpoints


def test_generators_get_their_own_settings_without_loading_anything():
    from modaverse_lite.dispatch import _diffusers_for

    gpu = profiles.get_profile("gpu")
    image = _diffusers_for(gpu, "image")
    assert image.steps == 2 and image.call_kwargs == {"guidance_scale": 0.0} and image.pipe is None
    video = _diffusers_for(gpu, "video")
    assert video.steps == 25 and video.call_kwargs["num_frames"] == 16
    assert _diffusers_for(profiles.TINY.with_(checkpoints=profiles.TINY.checkpoints), "audio").steps == 2


def test_fixed_threads_sets_and_restores_the_thread_count(monkeypatch):
    import torch

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with zoo.fixed_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with zoo.fixed_threads(0):  # 0: torch's own choice
        assert torch.get_num_threads() == before
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))  # the user's explicit setting wins
    with zoo.fixed_threads(before + 1):
        assert torch.get_num_threads() == before
    assert profiles.get_profile("tiny").train.threads == 2  # the figures of the README's table were measured so


def test_tiny_and_demos_score_every_held_out_record():
    """``TrainSettings.eval_items`` is the size of each held-out split of the profile's default dataset: the
    targets are measured on all of it (a literal in ``profiles`` that must follow ``dataset_records``)."""
    for name in ("tiny", "demos"):
        p = profiles.get_profile(name)
        sizes = _split_sizes(p.dataset_records, len(pairs_of(p.pairs)))
        assert {sizes[s] for s in ("val", "unseen", "phrasing")} == {p.train.eval_items}, name
