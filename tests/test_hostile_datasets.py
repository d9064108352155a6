"""Hostile and careless input to the dataset code.

Every bad record line, media path or caption table becomes a problem on its line, a skipped row with its reason,
or a refused build that leaves the previous dataset as it was: never a raw exception, a hang, a read outside the
dataset folder, or a lost dataset.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from modaverse_lite import dataset, encode, files, media, world
from modaverse_lite.__main__ import main
from modaverse_lite.dataset import MAX_CAPTION_CHARS
from modaverse_lite.errors import BusyError, DatasetError
from modaverse_lite.records import MAX_NESTING, MAX_RECORD_BYTES, check_dataset, parse_line, read_records

ROOT = Path(__file__).resolve().parents[1]
N = 65  # the smallest world dataset: every pair in every split


@pytest.fixture(scope="module")
def world65(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world") / "ds"
    dataset.build_world_dataset(out, records=N, seed=0, progress=False)
    return out


@pytest.fixture
def no_hang():
    """Fail instead of hanging when the code under test blocks (opening a FIFO blocks until a writer comes)."""
    def alarm(signum, frame):
        raise TimeoutError("blocked for 30 s: was a FIFO opened?")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _leftovers(parent: Path) -> list[str]:
    """Temporary or old folders a build left beside its output."""
    return [p.name for p in parent.iterdir() if p.name.endswith((".tmp", ".old"))]


def _teacher(root: Path) -> Path:
    """A teacher's folder with two good media files in clips/."""
    (root / "clips").mkdir(parents=True)
    media.save_image(world.render("image", {"colour": "red", "shape": "circle"}, seed=0).data, root / "clips/a.png")
    media.save_audio(world.render("audio", {"pitch": "low", "timbre": "sine"}, seed=1).data, root / "clips/b.wav",
                     world.SAMPLE_RATE)
    return root


GOOD_ROWS = [("clips/a.png", "a red circle"), ("clips/b.wav", "a low sine tone")]


def _csv(path: Path, rows, encoding: str = "utf-8") -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["file", "caption"])
    writer.writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


# ---- 1. a failed build never loses the dataset that was there -----------------------------------------------
def test_a_failed_from_folder_keeps_the_existing_dataset(tmp_path):
    t = _teacher(tmp_path / "t")
    out = tmp_path / "out"
    dataset.build_from_captions(_csv(t / "good.csv", GOOD_ROWS), out, progress=False)
    before = _files(out)
    assert any(k.startswith("media/") for k in before)
    (t / "header.csv").write_text("path,text\nclips/a.png,x\n")
    cases = [(t / "header.csv", "header"),
             (_csv(t / "unusable.csv", [("clips/missing.png", "gone"), ("clips/a.png", "  ")]), "no usable rows"),
             (_csv(t / "latin.csv", [("clips/a.png", "un café")], "latin-1"), "UTF-8")]
    for table, words in cases:
        with pytest.raises(DatasetError, match=words):
            dataset.build_from_captions(table, out, progress=False)
        assert _files(out) == before, table.name
        assert main(["data", "from-folder", str(table), "--out", str(out)]) == 2
        assert _files(out) == before, table.name
    assert _leftovers(tmp_path) == []


def test_a_failed_world_build_keeps_the_existing_dataset(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    dataset.build_world_dataset(out, records=N, seed=0, progress=False)
    before = _files(out)
    save_video, calls = media.save_video, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) > 2:
            raise OSError("No space left on device")
        return save_video(*args, **kwargs)

    monkeypatch.setattr(media, "save_video", flaky)
    with pytest.raises(OSError, match="No space left"):
        dataset.build_world_dataset(out, records=N, seed=1, progress=False)
    assert _files(out) == before and _leftovers(tmp_path) == []
    monkeypatch.setattr(media, "save_video", save_video)
    dataset.build_world_dataset(out, records=N, seed=1, progress=False)  # a rebuild replaces all of it
    dataset.build_world_dataset(tmp_path / "fresh", records=N, seed=1, progress=False)
    assert _files(out) == _files(tmp_path / "fresh")


def test_a_rebuild_refuses_a_dataset_folder_holding_files_it_did_not_write(tmp_path):
    out = tmp_path / "ds"
    dataset.build_world_dataset(out, records=N, seed=0, progress=False)
    (out / "notes.txt").write_text("mine")
    shutil.copyfile(next((out / "media/image").iterdir()), out / "media/image/my_cat.png")
    for build in (lambda: dataset.build_world_dataset(out, records=N, seed=1, progress=False),
                  lambda: dataset.build_from_captions(_csv(_teacher(tmp_path / "t") / "c.csv", GOOD_ROWS), out)):
        with pytest.raises(DatasetError, match=r"notes\.txt"):
            build()
    assert (out / "notes.txt").read_text() == "mine" and (out / "media/image/my_cat.png").is_file()


# ---- 2. one writer at a time --------------------------------------------------------------------------------
HOLD = ("import sys\nfrom modaverse_lite import files\nwith files.locked(sys.argv[1], what='dataset'):\n"
        "    print('held', flush=True)\n    sys.stdin.read()\n")


def test_a_second_writer_refuses_while_another_process_writes(tmp_path):
    out = tmp_path / "ds"
    dataset.build_world_dataset(out, records=N, seed=0, progress=False)
    before = _files(out)
    table = _csv(_teacher(tmp_path / "t") / "c.csv", GOOD_ROWS)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = re.escape(str(files.lock_path(out)))
        with pytest.raises(BusyError, match=lock):
            dataset.build_world_dataset(out, records=N, seed=1, progress=False)
        with pytest.raises(BusyError, match=lock):
            dataset.build_from_captions(table, out, progress=False)
        proc = subprocess.run([sys.executable, "-m", "modaverse_lite", "data", "build", "--records", "200",
                               "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and str(files.lock_path(out)) in proc.stderr, proc.stderr
        assert _files(out) == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    dataset.build_world_dataset(out, records=N, seed=1, progress=False)  # free again once the holder is done


def test_two_concurrent_builds_never_mix_two_seeds(tmp_path):
    out = tmp_path / "ds"
    procs = [subprocess.Popen([sys.executable, "-m", "modaverse_lite", "data", "build", "--records", "200",
                               "--seed", str(seed), "--out", str(out), "--json"], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seed in (1, 2)]
    results = [(p.returncode, err) for p in procs for _, err in [p.communicate(timeout=120)]]
    assert sorted(rc for rc, _ in results) in ([0, 0], [0, 2]), results
    assert all("lock" in err for rc, err in results if rc == 2)
    seed = json.loads((out / "manifest.json").read_text())["seed"]
    dataset.build_world_dataset(tmp_path / "reference", records=200, seed=seed, progress=False)
    assert _files(out) == _files(tmp_path / "reference")
    assert _leftovers(tmp_path) == []


# ---- 3. nothing is read from outside the dataset folder -----------------------------------------------------
def _escaping(src: Path, tmp_path: Path) -> tuple[Path, list[int]]:
    """A copy of dataset ``src`` whose image records on three lines point outside it: '..', absolute, symlink."""
    ds = tmp_path / "ds"
    shutil.copytree(src, ds)
    outside = tmp_path / "outside.png"
    shutil.copyfile(next((ds / "media/image").iterdir()), outside)
    os.symlink(outside, ds / "media/image/link.png")
    lines = (ds / "records.jsonl").read_text().splitlines()
    objs = [json.loads(line) for line in lines]
    bad = [i for i, o in enumerate(objs) if o["media"]["image"]][:3]
    for i, path in zip(bad, ["../outside.png", str(outside), "media/image/link.png"], strict=True):
        objs[i]["media"]["image"] = path
        lines[i] = json.dumps(objs[i])
    (ds / "records.jsonl").write_text("\n".join(lines) + "\n")
    return ds, [i + 1 for i in bad]


def test_reading_refuses_records_whose_media_leave_the_dataset(world65, tmp_path):
    ds, bad = _escaping(world65, tmp_path)
    with pytest.raises(DatasetError, match=rf"records\.jsonl:{bad[0]}: .*'\.\./outside\.png'"):
        read_records(ds)
    kept = read_records(ds, strict=False)
    assert len(kept) == N - 3
    assert all(r.media_path(ds, m).resolve().is_relative_to(ds.resolve()) for r in kept for m in r.inputs)
    assert sorted({p.line for p in check_dataset(ds).problems}) == bad
    record = next(r for r in read_records(world65) if r.inputs == ["image"])
    for path in ("../outside.png", str(tmp_path / "outside.png"), "media/image/link.png"):
        escaping = dataclasses.replace(record, media={**record.media, "image": path})
        with pytest.raises(DatasetError, match="outside|'..'|absolute"):
            escaping.media_path(ds, "image")


def test_training_features_are_never_read_from_outside_the_dataset(world65, tmp_path, monkeypatch):
    ds, _ = _escaping(world65, tmp_path)
    read: list[Path] = []
    monkeypatch.setattr(encode, "encode", lambda paths, *args, **kwargs: read.extend(paths) or list(paths))
    record = next(r for r in read_records(world65) if r.inputs == ["image"])
    escaping = dataclasses.replace(record, media={**record.media, "image": "../outside.png"})
    with pytest.raises(DatasetError, match=r"'\.\./outside\.png'"):
        encode.record_features([record, escaping], ds, "tiny", progress=False)
    assert read == []
    kept = read_records(ds, strict=False)
    features, rows = encode.record_features(kept, ds, "tiny", progress=False)
    assert read and all(p.resolve().is_relative_to(ds.resolve()) for p in read)
    for r, row in zip(kept, rows, strict=True):  # each record's row is its own medium, each medium read once
        assert row is None if not r.inputs else features[row[0]][row[1]] == r.media_path(ds, row[0])
    assert len(read) == len(set(read))


# ---- 4. the checker: every bad line is a problem on its line --------------------------------------------------
def _lines(world65: Path) -> tuple[list[bytes], bytes]:
    """Four good text-only record lines of the world dataset, and one good line with an image."""
    raw = (world65 / "records.jsonl").read_bytes().splitlines()
    objs = [json.loads(line) for line in raw]
    text_only = [line for line, o in zip(raw, objs, strict=True) if not any(o["media"].values())][:4]
    with_image = next(line for line, o in zip(raw, objs, strict=True) if o["media"]["image"])
    return text_only, with_image


def _with_image(line: bytes, path: str) -> bytes:
    obj = json.loads(line)
    obj["media"]["image"] = path
    return json.dumps(obj).encode()  # ASCII: NULs and lone surrogates stay JSON escapes


def _padded(line: bytes, size: int) -> bytes:
    obj = json.loads(line)
    obj["instruction"] += " " + "x" * size
    return json.dumps(obj).encode()


BAD_LINES = {  # name: (line 3 of records.jsonl, words of its problem)
    "invalid UTF-8": (lambda good, img: good.replace(b'"instruction": "', b'"instruction": "\xff\xfe'),
                      "not valid UTF-8"),
    "over the size limit": (lambda good, img: _padded(good, MAX_RECORD_BYTES), "MAX_RECORD_BYTES"),
    "100,000 brackets": (lambda good, img: b"[" * 100_000, "MAX_RECORD_BYTES"),
    "deep nesting": (lambda good, img: b"[" * 20_000 + b"]" * 20_000, "MAX_NESTING"),
    "nesting the parser accepts": (lambda good, img: good.replace(b'"captions": {', b'"captions": {"image": '
                                                                  + b"[" * 990 + b"]" * 990 + b", ", 1),
                                   "MAX_NESTING"),
    "5,000-digit integer": (lambda good, img: b'{"id": ' + b"7" * 5000 + b"}", "malformed JSON"),
    "NUL in a path": (lambda good, img: _with_image(img, "media/image/a\0.png"), r"'media/image/a\x00.png'"),
    "300-character name": (lambda good, img: _with_image(img, "media/image/" + "a" * 300 + ".png"),
                           "'media/image/aaaaaaaa"),
    "lone surrogate in a path": (lambda good, img: _with_image(img, "media/image/\ud800.png"),
                                 r"'media/image/\ud800.png'"),
    "lone surrogate id": (lambda good, img: good.replace(b'"id": "', b'"id": "\\ud800'), "lone surrogate"),
}


@pytest.mark.parametrize("case", list(BAD_LINES))
def test_the_checker_and_the_reader_name_each_bad_line(world65, tmp_path, capsys, case):
    (good, image_line), (make, words) = _lines(world65), BAD_LINES[case]
    ds = tmp_path / "ds"
    (ds / "media/image").mkdir(parents=True)
    (ds / "records.jsonl").write_bytes(b"\n".join([good[0], good[1], make(good[2], image_line), good[3]]) + b"\n")
    report = check_dataset(ds)
    assert not report.ok and report.records == 4 and report.valid == 3
    assert {p.line for p in report.problems} == {3}
    assert any(words in p.message for p in report.problems), [p.message for p in report.problems]
    report.format().encode("utf-8")  # printable, whatever the record holds
    assert main(["data", "check", str(ds)]) == 1
    assert "line 3" in capsys.readouterr().out
    with pytest.raises(DatasetError, match=r"records\.jsonl:3: "):
        read_records(ds)
    assert len(read_records(ds, strict=False)) == 3


def test_nesting_up_to_the_limit_parses():
    obj, err = parse_line("[" * MAX_NESTING + "]" * MAX_NESTING)
    assert err is None and isinstance(obj, list)
    obj, err = parse_line("[" * (MAX_NESTING + 1) + "]" * (MAX_NESTING + 1))
    assert obj is None and "MAX_NESTING" in err


@pytest.mark.parametrize("content", [b"", b"\n \n\t\n"])
def test_an_empty_records_file_is_a_problem(tmp_path, content):
    (tmp_path / "records.jsonl").write_bytes(content)
    report = check_dataset(tmp_path)
    assert not report.ok and any("no records" in p.message for p in report.problems)
    with pytest.raises(DatasetError, match="no records"):
        read_records(tmp_path)


def test_a_huge_line_is_refused_without_reading_it_into_memory(world65, tmp_path):
    good, _ = _lines(world65)
    (tmp_path / "records.jsonl").write_bytes(b"\n".join([good[0], _padded(good[1], 5_000_000), good[2]]) + b"\n")
    tracemalloc.start()
    try:
        assert len(read_records(tmp_path, strict=False)) == 2
        report = check_dataset(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [p.line for p in report.problems] == [2] and "MAX_RECORD_BYTES" in report.problems[0].message
    assert peak < 1_000_000, f"{peak} bytes for a 5 MB line"


def test_the_checker_names_a_fifo_a_folder_and_a_symlink_loop_without_opening_them(world65, tmp_path, no_hang):
    ds = tmp_path / "ds"
    shutil.copytree(world65, ds)
    images = sorted((ds / "media/image").iterdir())
    kinds = {images[0]: "is not a regular file (a FIFO)", images[1]: "is a folder", images[2]: "is a symlink loop"}
    for path in kinds:
        path.unlink()
    os.mkfifo(images[0])
    images[1].mkdir()
    os.symlink(images[2].name, images[2])
    found = {p.message for p in check_dataset(ds).problems}
    for path, words in kinds.items():
        assert any(path.name in m and words in m for m in found), (words, found)


# ---- 5. from-folder on real-world tables ---------------------------------------------------------------------
@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig", "utf-8"])
def test_from_folder_reads_utf16_and_utf8_tables(tmp_path, encoding):
    t = _teacher(tmp_path / "t")
    rows = [("clips/a.png", "un cercle rouge, café"), ("clips/b.wav", "ein tiefer Sinuston ♪")]
    summary = dataset.build_from_captions(_csv(t / "c.csv", rows, encoding), tmp_path / "out", progress=False)
    assert summary["skipped"] == []
    assert {c for r in read_records(tmp_path / "out") for c in r.captions.values()} == {c for _, c in rows}


def test_from_folder_refuses_a_table_that_is_not_utf8(tmp_path):
    t = _teacher(tmp_path / "t")
    latin = _csv(t / "latin.csv", [GOOD_ROWS[0], ("clips/b.wav", "un café")], "latin-1")
    with pytest.raises(DatasetError, match=r"UTF-8.*line 3"):
        dataset.build_from_captions(latin, tmp_path / "out", progress=False)
    bare = _csv(t / "bare.csv", GOOD_ROWS, "utf-16-le")  # UTF-16 without its byte-order mark
    with pytest.raises(DatasetError, match="UTF-16"):
        dataset.build_from_captions(bare, tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_from_folder_skips_hostile_rows_and_says_why(tmp_path, no_hang):
    t = _teacher(tmp_path / "t")
    os.mkfifo(t / "clips/pipe.png")
    (t / "clips/folder.png").mkdir()
    os.symlink("loop.png", t / "clips/loop.png")
    hostile = {  # row: words of its reason
        ("clips/a.png", "x" * 200_000): "MAX_CAPTION_CHARS",  # over the csv module's field limit
        ("clips/a.png", "y" * (MAX_CAPTION_CHARS + 1)): "MAX_CAPTION_CHARS",
        ("clips/pipe.png", "a pipe"): "is not a regular file (a FIFO)",
        ("clips/folder.png", "a folder"): "is a folder",
        ("clips/loop.png", "a loop"): "is a symlink loop",
    }
    rows = [GOOD_ROWS[0], *hostile, GOOD_ROWS[1]]
    summary = dataset.build_from_captions(_csv(t / "c.csv", rows), tmp_path / "out", progress=False)
    assert len(summary["skipped"]) == len(hostile)
    for line, words in enumerate(hostile.values(), start=3):
        assert any(f"c.csv:{line}:" in s and words in s for s in summary["skipped"]), (line, words, summary)
    assert check_dataset(tmp_path / "out").ok


def test_from_folder_skips_invalid_unicode_and_leaves_nothing_half_built(tmp_path):
    t = _teacher(tmp_path / "t")
    table = t / "c.jsonl"
    table.write_text("".join(json.dumps({"file": f, "caption": c}) + "\n" for f, c in [
        ("clips/a.png", "a red \ud800 circle"), ("clips/\udcff.png", "a file"), GOOD_ROWS[1]]))
    summary = dataset.build_from_captions(table, tmp_path / "out", progress=False)
    assert [s.split(":")[1] for s in summary["skipped"]] == ["1", "2"]
    assert all("lone surrogate" in s for s in summary["skipped"]), summary["skipped"]
    assert check_dataset(tmp_path / "out").ok and summary["media"]["audio"] == 1
    table.write_text(json.dumps({"file": "clips/a.png", "caption": "a red \ud800 circle"}) + "\n")
    with pytest.raises(DatasetError, match="no usable rows"):
        dataset.build_from_captions(table, tmp_path / "out2", progress=False)
    assert not (tmp_path / "out2").exists() and _leftovers(tmp_path) == []
