"""The instruction dataset: schema, builders, determinism, held-out splits and the checker."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modaverse_lite import dataset, instructions, media, meta, world
from modaverse_lite.__main__ import main
from modaverse_lite.errors import DatasetError
from modaverse_lite.instructions import HELD_OUT, PAIRS, TEMPLATES
from modaverse_lite.records import SPLITS, Record, check_dataset, read_records, write_records

ROOT = Path(__file__).resolve().parents[1]
N = 130  # two records per pair in every held-out split, the rest train


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("world") / "ds"
    summary = dataset.build_world_dataset(out, seed=3, records=N, progress=False)
    return out, summary


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _combo(modality: str, attributes: dict[str, str]) -> tuple[str, ...]:
    return tuple(attributes[k] for k in world.ATTRIBUTES[modality])


# ---- schema ------------------------------------------------------------------------------------------------
def test_record_round_trip(built, tmp_path):
    out, _ = built
    records = read_records(out)
    assert len(records) == N
    for r in records:
        assert Record.from_dict(json.loads(r.to_json())) == r
        parsed = meta.parse(r.response())
        assert parsed.ok and (parsed.modality, parsed.prompt) == (r.target.modality, r.target.prompt)
    copy = write_records(records, tmp_path / "copy.jsonl")
    assert copy.read_bytes() == (out / "records.jsonl").read_bytes()
    assert [r.split for r in read_records(out, split="unseen")] == ["unseen"] * sum(
        r.split == "unseen" for r in records)
    with pytest.raises(DatasetError, match="missing key 'target'"):
        Record.from_dict({k: v for k, v in records[0].to_dict().items() if k != "target"})


def test_record_media_path(built):
    out, _ = built
    r = next(r for r in read_records(out) if r.inputs == ["audio"])
    assert r.media_path(out, "audio").is_file()
    with pytest.raises(DatasetError, match="no image input"):
        r.media_path(out, "image")


# ---- the world builder -------------------------------------------------------------------------------------
def test_same_seed_gives_identical_files_and_other_seed_differs(built, tmp_path):
    out, _ = built
    again = tmp_path / "again"
    # a second build through the command line, with another string-hash seed: no reliance on set order
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    proc = subprocess.run([sys.executable, "-m", "modaverse_lite", "data", "build", "--profile", "tiny",
                           "--out", str(again), "--seed", "3", "--records", str(N), "--json"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["records"] == N
    a, b = _files(out), _files(again)
    assert sorted(a) == sorted(b)
    assert any(k.endswith(".gif") for k in a) and any(k.endswith(".wav") for k in a)
    assert a == b
    other = tmp_path / "other"
    dataset.build_world_dataset(other, seed=4, records=N, progress=False)
    assert (other / "records.jsonl").read_bytes() != (out / "records.jsonl").read_bytes()


def test_every_pair_in_every_split_with_correct_targets(built):
    out, summary = built
    assert len(PAIRS) == 13 and len(set(PAIRS)) == 13
    assert set(TEMPLATES) == set(PAIRS)
    records = read_records(out)
    assert summary["records"] == len(records) == N
    for split in SPLITS:
        assert {r.pair for r in records if r.split == split} == set(PAIRS), split
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3 and manifest["pairs"] == summary["pairs"]
    assert sum(manifest["splits"].values()) == N and all(manifest["pairs"][p] > 0 for p in PAIRS)
    for r in records:
        assert r.pair == instructions.pair_name(r.inputs, r.target.modality)
        assert set(r.captions) == set(r.attributes)
        for m, a in r.attributes.items():
            assert r.captions[m] == world.caption(m, a)
        if r.inputs and r.target.modality == "text":  # describe: the answer is the input's caption
            assert r.target.prompt == r.captions[r.inputs[0]]
        elif r.inputs:  # X -> Y follows the world's rules
            (x,), y = r.inputs, r.target.modality
            direction = r.attributes[y].get("direction") if x != "video" else None
            assert r.attributes[y] == world.translate(x, r.attributes[x], y, direction)
            assert r.target.prompt == r.captions[y]
            if direction:
                assert direction in r.instruction
        elif r.target.modality != "text":  # text -> X: the caption is both in the instruction and the prompt
            assert r.target.prompt == r.captions[r.target.modality] and r.target.prompt in r.instruction
        else:  # text -> text: a short deterministic answer about a world object named in the question
            assert any(c in r.instruction for c in r.captions.values())
            assert len(r.target.prompt.split()) <= 5


def test_phrasing_split_uses_only_held_out_templates(built):
    out, _ = built
    for r in read_records(out):
        fills = [{"caption": c, "direction": d} for c in [*r.captions.values(), ""] for d in world.DIRECTIONS]
        used = {t for t in TEMPLATES[r.pair] for f in fills if t.format(**f) == r.instruction}
        assert len(used) >= 1, r.instruction
        assert all((t in HELD_OUT[r.pair]) == (r.split == "phrasing") for t in used), (r.split, r.instruction)
    for pair in PAIRS:
        assert HELD_OUT[pair] and instructions.train_templates(pair)
        assert len(TEMPLATES[pair]) >= 8


def test_unseen_split_holds_only_unseen_combinations_and_train_none(built):
    out, _ = built
    records = read_records(out)
    for r in records:
        combos = [(m, _combo(m, a)) for m, a in r.attributes.items()]
        if r.split == "unseen":
            # the record's subject (its input medium; for text -> X the target; for a question its object)
            subject = r.inputs[0] if r.inputs else r.target.modality if r.target.modality != "text" else None
            if subject:
                assert _combo(subject, r.attributes[subject]) in world.UNSEEN[subject], r
            assert any(c in world.UNSEEN[m] for m, c in combos), r
        else:
            assert not any(c in world.UNSEEN[m] for m, c in combos), r
    media_of = {s: {p for r in records if r.split == s for p in r.media.values() if p} for s in SPLITS}
    # val and test media are never seen in training; the phrasing split reuses the test media
    held_out = media_of["val"] | media_of["test"] | media_of["unseen"]
    assert media_of["train"] and not media_of["train"] & held_out
    assert not media_of["val"] & media_of["test"]


def test_too_few_records_and_foreign_folder_refused(tmp_path):
    with pytest.raises(DatasetError, match="at least 65"):
        dataset.build_world_dataset(tmp_path / "x", records=20, progress=False)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not empty"):
        dataset.build_world_dataset(foreign, records=65, progress=False)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_paraphrase_hook(tmp_path):
    def paraphrase(text: str) -> str:
        if text.startswith("Draw"):
            raise RuntimeError("rate limited")
        return "" if text.startswith("Paint") else "Please, " + text[0].lower() + text[1:]

    summary = dataset.build_world_dataset(tmp_path / "p", seed=1, records=65, paraphrase=paraphrase,
                                          progress=False)
    records = read_records(tmp_path / "p")
    kept = [r for r in records if r.instruction.startswith(("Draw", "Paint"))]
    assert summary["paraphrase_failures"] == len(kept) > 0
    assert all(r.instruction.startswith("Please, ") for r in records if r not in kept)
    assert check_dataset(tmp_path / "p").ok


# ---- the checker -------------------------------------------------------------------------------------------
def _plant(src: Path, dst: Path) -> dict[int, str]:
    """Copy dataset ``src`` to ``dst`` and plant one problem per chosen line; returns {line: words}."""
    shutil.copytree(src, dst, symlinks=True)
    lines = (dst / "records.jsonl").read_text().splitlines()
    objs = [json.loads(line) for line in lines]
    with_image = [i for i, o in enumerate(objs) if o["media"]["image"]][:5]
    without = [i for i, o in enumerate(objs) if i > 0 and not any(o["media"].values())][:8]
    outside = dst.parent / "outside.png"
    media.save_image(np.zeros((8, 8, 3), np.uint8), outside)
    (dst / "media/image/garbage.png").write_bytes(b"this is not a png at all")
    os.symlink(outside, dst / "media/image/link.png")
    expected: dict[int, str] = {}

    def plant(i: int, words: str, edit=None, text: str | None = None) -> None:
        if edit:
            edit(objs[i])
        lines[i] = text if text is not None else json.dumps(objs[i])
        expected[i + 1] = words

    def set_image(path):
        return lambda o: o["media"].update(image=path)

    plant(with_image[0], "missing image file", set_image("media/image/99999.png"))
    plant(with_image[1], "unreadable image file", set_image("media/image/garbage.png"))
    existing = (dst / objs[with_image[2]]["media"]["image"]).resolve()
    plant(with_image[2], "is absolute", set_image(str(existing)))
    plant(with_image[3], "uses '..'", set_image("../outside.png"))
    plant(with_image[4], "symlink", set_image("media/image/link.png"))
    plant(without[0], "unknown modality flag 'smell'", lambda o: o["target"].update(modality="smell"))
    plant(without[1], "empty instruction", lambda o: o.update(instruction="   "))
    plant(without[2], "empty target prompt", lambda o: o["target"].update(prompt=""))
    plant(without[3], "duplicate id", lambda o: o.update(id=objs[0]["id"]))
    plant(without[4], "malformed JSON", text='{"id": "broken", "split": ')
    plant(without[5], "missing key 'instruction'", lambda o: o.pop("instruction"))
    plant(without[6], "'media' must be", lambda o: o.update(media="media/image/00000.png"))
    plant(without[7], "'id' must be", lambda o: o.update(id=17))
    (dst / "records.jsonl").write_text("\n".join(lines) + "\n")
    return expected


def test_check_reports_every_planted_problem_with_its_line(built, tmp_path, capsys):
    out, _ = built
    assert main(["data", "check", str(out), "--json"]) == 0
    clean = json.loads(capsys.readouterr().out)
    assert clean["problems"] == 0 and clean["records"] == N and set(clean["pairs"]) >= set(PAIRS)
    assert clean["missing_pairs"] == [] and all(clean["pairs"][p] > 0 for p in PAIRS)

    bad = tmp_path / "bad"
    expected = _plant(out, bad)
    assert main(["data", "check", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["records"] == N and report["ok"] is False
    found: dict[int, list[str]] = {}
    for p in report["problem_list"]:
        found.setdefault(p["line"], []).append(p["message"])
    for line, words in expected.items():
        assert any(words in m for m in found.get(line, [])), (line, words, found.get(line))
    assert set(found) == set(expected)  # the other records are still checked, and are fine
    assert report["valid"] == N - len(expected) and report["problems"] >= len(expected)

    assert main(["data", "check", str(bad)]) == 1
    text = capsys.readouterr().out
    for line in expected:
        assert f"line {line}" in text

    with pytest.raises(DatasetError, match=r"records\.jsonl:\d+"):
        read_records(bad)
    # lines with a broken structure (7) and records whose media leave the folder (absolute, '..', symlink) are skipped
    assert len(read_records(bad, strict=False)) == N - 10


def test_check_of_a_missing_dataset(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path), "--json"]) == 1
    assert "no records.jsonl" in capsys.readouterr().out


# ---- builder (b): a teacher's own captioned media ----------------------------------------------------------
def _teacher_folder(root: Path) -> list[tuple[str, str]]:
    """A small folder of captioned media, some of it broken; returns (file, caption) rows."""
    rows = []
    for i, (m, attrs) in enumerate([("image", {"colour": "red", "shape": "circle"}),
                                    ("image", {"colour": "blue", "shape": "square"}),
                                    ("audio", {"pitch": "low", "timbre": "sine"}),
                                    ("video", {"colour": "green", "shape": "diamond", "direction": "up"})]):
        s = world.render(m, attrs, seed=i)
        name = f"clips/item{i}" + {"image": ".png", "audio": ".wav", "video": ".gif"}[m]
        (root / "clips").mkdir(parents=True, exist_ok=True)
        if m == "image":
            media.save_image(s.data, root / name)
        elif m == "audio":
            media.save_audio(s.data, root / name, world.SAMPLE_RATE)
        else:
            media.save_video(s.data, root / name)
        rows.append((name, s.caption))
    media.save_image(np.full((10, 12, 3), 200, np.uint8), root / "clips/photo.jpg")
    rows.append(("clips/photo.jpg", "My cat, asleep on the sofa"))
    (root / "clips/broken.png").write_bytes(b"\x89PNG broken")
    rows += [("clips/broken.png", "a broken file"), ("clips/missing.wav", "not there"),
             ("clips/item0.png", "  ")]
    return rows


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_build_from_captions(tmp_path, kind):
    rows = _teacher_folder(tmp_path / "teacher")
    table = tmp_path / "teacher" / f"captions.{kind}"
    if kind == "csv":
        import csv

        with open(table, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["file", "caption"])
            writer.writerows(rows)
    else:
        table.write_text("".join(json.dumps({"file": f, "caption": c}) + "\n" for f, c in rows) + "{oops\n")
    out = tmp_path / "out"
    summary = dataset.build_from_captions(table, out, seed=0)
    assert len(summary["skipped"]) == 3 + (kind == "jsonl")  # broken, missing, empty caption (+ bad JSON)
    for name in ("broken.png", "missing.wav"):
        assert any(name in s for s in summary["skipped"])
    report = check_dataset(out)
    assert report.ok, report.format()
    records = read_records(out)
    captions = {c for f, c in rows[:5]}
    assert {r.captions[next(iter(r.captions))] for r in records} == captions
    for r in records:
        caption = next(iter(r.captions.values()))
        assert r.target.prompt == caption
        if r.inputs:
            assert r.target.modality == "text" and r.media_path(out, r.inputs[0]).is_file()
            assert media.modality_of(r.media[r.inputs[0]]) == r.inputs[0]
        else:
            assert r.target.modality in world.MODALITIES and caption in r.instruction
    assert {"image+text->text", "text->image", "audio+text->text", "text->audio", "video+text->text",
            "text->video"} == {r.pair for r in records}
    world_made = [r for r in records if r.captions.get("image") == "a red circle"]
    assert world_made
    assert all(r.attributes == {"image": {"colour": "red", "shape": "circle"}} for r in world_made)
    again = dataset.build_from_captions(table, tmp_path / "again", seed=0)
    assert again["records"] == summary["records"]
    assert _files(out) == _files(tmp_path / "again")


def test_from_folder_command_line(tmp_path, capsys):
    rows = _teacher_folder(tmp_path / "t")
    (tmp_path / "t/captions.jsonl").write_text("".join(json.dumps({"file": f, "caption": c}) + "\n"
                                                       for f, c in rows[:5]))
    assert main(["data", "from-folder", str(tmp_path / "t/captions.jsonl"), "--out", str(tmp_path / "o"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["records"] == 2 * 5 + 2  # 5 items, the test item twice
    with pytest.raises(DatasetError, match="unknown table format"):
        dataset.build_from_captions(tmp_path / "t/clips/item0.png", tmp_path / "o2")
