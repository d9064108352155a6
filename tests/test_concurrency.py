"""Two processes writing one run folder or one zoo entry: a run refuses a busy folder, a zoo build waits and reuses.

The writers are real processes (a lock held by this one would prove nothing about another), each a few lines of
Python started with ``subprocess``; the expensive parts (training, pretraining) are replaced by tiny stand-ins.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

from modaverse_lite import files
from modaverse_lite.errors import BusyError
from modaverse_lite.model import ModaVerseLite
from modaverse_lite.train import TrainConfig, align_train

ROOT = Path(__file__).resolve().parents[1]

HOLD_LOCK = """
import sys, time
from modaverse_lite import files

with files.locked(sys.argv[1], what="run folder"):
    print("holding", flush=True)
    time.sleep(300)
"""

BUILD_CLIP = """
import sys, time
from pathlib import Path
from modaverse_lite import zoo

log, release, role = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]

def note(line):
    with log.open("a") as f:
        f.write(f"{role} {line}\\n")

def slow_build(out, recipe):  # stands in for pretraining CLIP: writes a file once `release` exists
    note("building")
    while not release.exists():
        time.sleep(0.05)
    (out / "weights.txt").write_text(role)

zoo._BUILDERS["clip"] = slow_build
zoo.path("clip")
note("ready")
print(zoo.ensure("clip"), flush=True)
"""


def _env(**extra) -> dict:
    """This checkout first on the path (the subprocess imports the code under test), and the same cache."""
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, **extra}


def _wait_for(file: Path, line: str, *processes, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not (file.exists() and line in file.read_text().splitlines()):
        for p in processes:
            assert p.poll() is None, f"a helper process ended early: {p.communicate()}"
        assert time.monotonic() < deadline, f"no {line!r} in {file} after {timeout} s"
        time.sleep(0.05)


def test_a_second_train_into_a_busy_run_folder_is_refused_at_once(world_data, tmp_path):
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(run_dir)], stdout=subprocess.PIPE, text=True,
                              env=_env())
    try:
        assert holder.stdout.readline().strip() == "holding"
        second = subprocess.run([sys.executable, "-m", "modaverse_lite", "train", "--profile", "tiny", "--data",
                                 str(world_data), "--out", str(run_dir), "--steps", "2", "--json"],
                                capture_output=True, text=True, env=_env(), timeout=300)
    finally:
        holder.kill()
        holder.wait()
    assert second.returncode == 2, second.stderr[-3000:]
    assert str(files.lock_path(run_dir)) in second.stderr and "run folder" in second.stderr, second.stderr
    assert not (run_dir / "checkpoint").exists()


def _probe_the_lock_at_every_step(monkeypatch, run_dir) -> list[str]:
    """At every training step, try to take the run folder's lock: "held" when the run holds it, else "free"."""
    real, seen = ModaVerseLite.loss, []

    def probing(self, examples, features, *weight):
        try:
            with files.locked(run_dir):
                seen.append("free")
        except BusyError:
            seen.append("held")
        return real(self, examples, features, *weight)

    monkeypatch.setattr(ModaVerseLite, "loss", probing)
    return seen


def test_a_run_holds_its_folder_lock_from_start_to_end(world_data, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    seen = _probe_the_lock_at_every_step(monkeypatch, run_dir)
    align_train(TrainConfig.from_profile("tiny", data_dir=world_data, out_dir=run_dir, steps=2, eval_every=2,
                                         eval_items=5, progress=False))
    assert seen == ["held", "held"]
    with files.locked(run_dir):  # and lets go at the end
        pass


def test_two_processes_building_one_zoo_entry_build_it_once(tmp_path):
    env = _env(MODAVERSE_CACHE=str(tmp_path / "cache"))
    log, release = tmp_path / "log", tmp_path / "release"

    def start(role):
        return subprocess.Popen([sys.executable, "-c", BUILD_CLIP, str(log), str(release), role],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    first = start("first")
    try:
        _wait_for(log, "first building", first)
        second = start("second")
        _wait_for(log, "second ready", first, second)
        time.sleep(1.0)  # long enough for the second to reach the entry (and wait for its lock)
        release.touch()
        outs = [p.communicate(timeout=120) for p in (first, second)]
    finally:
        for p in (first, locals().get("second")):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in (first, second)] == [0, 0], [err[-2000:] for _, err in outs]
    folders = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(folders) == 1, folders
    assert log.read_text().count("building") == 1, log.read_text()
    folder = Path(folders.pop())
    assert (folder / "DONE").exists() and (folder / "weights.txt").read_text() == "first"
    assert os.listdir(folder.parent) == [folder.name]  # no temporary folder or lock file left among the entries


def test_a_run_into_the_current_folder_locks_that_folder(world_data, tmp_path, monkeypatch):
    """``--out .`` names a folder too: its lock sits beside it, as for any other run folder."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    monkeypatch.chdir(run_dir)
    seen = _probe_the_lock_at_every_step(monkeypatch, run_dir)
    align_train(TrainConfig.from_profile("tiny", data_dir=world_data, out_dir=".", steps=1, eval_every=1,
                                         eval_items=5, progress=False))
    assert seen == ["held"] and (run_dir / "checkpoint" / "modaverse.json").exists()
