"""Instruction records: the JSONL schema, reading and writing it, and the checker.

ModaVerse learns I/O alignment from instructions whose *answer* is a meta-response, never media::

    instruction  "Turn this video into a sound."   + media/video/00042.gif
    target       Modality: [AUDIO] Prompt: a high sine tone

A dataset is a folder::

    DIR/records.jsonl                 one record per line, all splits, sorted by split then id
    DIR/media/{image,audio,video}/    NNNNN.png | NNNNN.wav | NNNNN.gif, shared between records
    DIR/manifest.json                 seed, recipe version, counts per split / pair / modality

Every record names its input→output ``pair`` (``instructions.PAIRS``) and a ``split``: ``train``; ``val`` and
``test`` (same distribution, media never used in training); ``unseen`` (attribute combinations held out of
training, ``world.UNSEEN``); ``phrasing`` (templates unused in training). ``check_dataset`` reports every problem
with its line number; a bad record never stops a check. ``dataset.py`` builds datasets in this schema.

Untrusted input stays inside two limits: a line of records.jsonl is at most ``MAX_RECORD_BYTES``, and a media path
must name a file inside the dataset folder (``media_path_problem``). Reading refuses what breaks them, so training
never reads outside the folder or parses a 50 MB line.
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from . import files, media, meta, world
from .errors import DatasetError
from .instructions import MODALITIES, PAIRS, TARGET_MODALITIES, pair_name

RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "val", "test", "unseen", "phrasing")
REQUIRED_KEYS = ("id", "split", "pair", "instruction", "media", "target", "captions")
MAX_RECORD_BYTES = 64 * 1024  # a line of records.jsonl, line end included; a real record is under 1 KiB
MAX_NAME_BYTES = 255  # one name of a media path (as UTF-8): what common file systems allow
MAX_NESTING = 16  # levels of JSON arrays / objects in one line; a record has 3 (attributes → modality → value)


# ---- the record --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What the model must answer: a modality flag and a prompt for its generator, or the answer itself."""

    modality: str  # "image" | "audio" | "video" | "text"
    prompt: str
    then: tuple[tuple[str, str], ...] = ()  # later segments of a several-output answer: (modality, prompt), in order

    @property
    def segments(self) -> list[tuple[str, str]]:
        """Every segment of the answer, in order: ``[("text", "a red circle"), ("audio", "a high sine tone")]``."""
        return [(self.modality, self.prompt), *self.then]

    @property
    def modalities(self) -> str:
        """The output side of the pair name: ``"image"``, or ``"text+audio"`` for a two-segment answer."""
        return "+".join(m for m, _ in self.segments)


@dataclass
class Record:
    """One instruction. ``media`` paths are relative to the dataset folder; ``captions`` and ``attributes``
    map a modality to the caption / world attributes of each object the record is about (inputs, a media
    target, the object a text question names)."""

    id: str
    split: str
    pair: str
    instruction: str
    media: dict[str, str | None]
    target: Target
    captions: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def inputs(self) -> list[str]:
        """The modalities of this record's input media, in ``MODALITIES`` order."""
        return [m for m in MODALITIES if self.media.get(m)]

    def media_path(self, root: str | os.PathLike, modality: str) -> Path:
        """The file of this record's ``modality`` input inside dataset folder ``root``; DatasetError if its path
        leaves the folder (``media_path_problem``)."""
        rel = self.media.get(modality)
        if not rel:
            raise DatasetError(f"record {self.id!r} has no {modality} input; it has {self.inputs or 'none'}")
        problem = media_path_problem(root, modality, rel)
        if problem:
            raise DatasetError(f"record {self.id!r}: {problem}")
        return Path(root) / rel

    def response(self) -> str:
        """The meta-response the model is trained to answer: ``Modality: [IMAGE] Prompt: a red circle``. Several
        segments follow each other on one line (``meta.parse`` reads them so): the tiny LLM's tokenizer knows
        " Modality" as one word, but "Modality" at the start of a line only as three rare pieces."""
        return " ".join(meta.format_meta(m, p) for m, p in self.target.segments)

    def to_dict(self) -> dict:
        return {
            "id": self.id, "split": self.split, "pair": self.pair, "instruction": self.instruction,
            "media": {m: self.media.get(m) for m in MODALITIES},
            "target": {"modality": self.target.modality, "prompt": self.target.prompt,
                       **({"then": [{"modality": m, "prompt": p} for m, p in self.target.then]}
                          if self.target.then else {})},
            "captions": dict(self.captions), "attributes": {m: dict(a) for m, a in self.attributes.items()},
        }

    def to_json(self) -> str:
        """One line of records.jsonl (keys in schema order, so equal records give equal bytes)."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_dict(cls, obj: object) -> Record:
        """A record from a parsed JSON line; raises DatasetError listing what is wrong with its structure."""
        problems = _structure_problems(obj)
        if problems:
            raise DatasetError("; ".join(problems))
        assert isinstance(obj, dict)
        return cls(id=obj["id"], split=obj["split"], pair=obj["pair"], instruction=obj["instruction"],
                   media={m: obj["media"].get(m) for m in MODALITIES},
                   target=Target(obj["target"]["modality"], obj["target"]["prompt"],
                                 tuple((t["modality"], t["prompt"]) for t in obj["target"].get("then", ()))),
                   captions=dict(obj["captions"]), attributes={m: dict(a) for m, a in
                                                               obj.get("attributes", {}).items()})


def _structure_problems(obj: object) -> list[str]:
    """Everything wrong with one parsed JSON line, media files aside (``check_dataset`` looks at those)."""
    if not isinstance(obj, dict):
        return [f"a record must be a JSON object, got {type(obj).__name__}"]
    out = [f"missing key {k!r}" for k in REQUIRED_KEYS if k not in obj]

    def wrong(key: str, expected: str) -> None:
        out.append(f"{key!r} must be {expected}, got {type(obj[key]).__name__} {obj[key]!r:.60}")

    def is_str_map(value: object) -> bool:
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())

    if "id" in obj and (not isinstance(obj["id"], str) or not obj["id"].strip()):
        wrong("id", "a non-empty string")
    if "split" in obj:
        if not isinstance(obj["split"], str):
            wrong("split", "a string")
        elif obj["split"] not in SPLITS:
            out.append(f"unknown split {obj['split']!r}; expected one of {SPLITS}")
    if "pair" in obj and not isinstance(obj["pair"], str):
        wrong("pair", "a string like 'image+text->audio'")
    if "instruction" in obj:
        if not isinstance(obj["instruction"], str):
            wrong("instruction", "a string")
        elif not obj["instruction"].strip():
            out.append("empty instruction")
    media_ok = False
    if "media" in obj:
        if not isinstance(obj["media"], dict):
            wrong("media", 'an object like {"image": "media/image/00001.png", "audio": null, "video": null}')
        else:
            media_ok = True
            for key, value in obj["media"].items():
                if key not in MODALITIES:
                    out.append(f"unknown media modality {key!r}; expected one of {MODALITIES}")
                    media_ok = False
                elif value is not None and not isinstance(value, str):
                    out.append(f"media[{key!r}] must be a path string or null, got {type(value).__name__}")
                    media_ok = False
    target_ok = False
    if "target" in obj:
        t = obj["target"]
        if not isinstance(t, dict):
            wrong("target", 'an object like {"modality": "image", "prompt": "a red circle"}')
        else:
            for k in ("modality", "prompt"):
                if k not in t:
                    out.append(f"target has no {k!r}")
                elif not isinstance(t[k], str):
                    out.append(f"target[{k!r}] must be a string, got {type(t[k]).__name__}")
            if isinstance(t.get("modality"), str):
                if t["modality"] in TARGET_MODALITIES:
                    target_ok = True
                else:
                    out.append(f"unknown modality flag {t['modality']!r} in target; "
                               f"expected one of {TARGET_MODALITIES}")
            if isinstance(t.get("prompt"), str) and not t["prompt"].strip():
                out.append("empty target prompt")
            elif target_ok and isinstance(t.get("prompt"), str):
                problem = meta.prompt_problem(t["modality"], t["prompt"])  # e.g. a marker inside the prompt
                if problem:
                    out.append(f"target prompt cannot be a meta-response: {problem}")
            if "then" in t:
                then_problems = _then_problems(t["then"])
                out += then_problems
                target_ok = target_ok and not then_problems
    if "captions" in obj and not is_str_map(obj["captions"]):
        wrong("captions", "an object of modality → caption strings")
    if "attributes" in obj and not (isinstance(obj["attributes"], dict)
                                    and all(is_str_map(a) for a in obj["attributes"].values())):
        wrong("attributes", "an object of modality → {attribute: value}")
    if not valid_unicode(obj):
        out += [f"{k!r} holds a lone surrogate (invalid Unicode): {v!r:.60}" for k, v in obj.items()
                if k != "media" and not valid_unicode(v)]  # media paths: media_path_problem says it
    if media_ok and target_ok and isinstance(obj.get("pair"), str):
        outputs = "+".join([obj["target"]["modality"], *(t["modality"] for t in obj["target"].get("then", ()))])
        expected = pair_name([m for m in MODALITIES if obj["media"].get(m)], outputs)
        if obj["pair"] != expected:
            out.append(f"pair {obj['pair']!r} does not match the media and target; expected {expected!r}")
    return out


def _then_problems(then: object) -> list[str]:
    """What is wrong with a target's later segments (``Target.then``): a list of {"modality", "prompt"} objects."""
    if not isinstance(then, list) or not then or len(then) >= meta.MAX_SEGMENTS:
        return [f"target 'then' must be a list of 1 to {meta.MAX_SEGMENTS - 1} segments, got {then!r:.60}"]
    out = []
    for k, seg in enumerate(then):
        if not (isinstance(seg, dict) and set(seg) == {"modality", "prompt"} and seg["modality"] in TARGET_MODALITIES
                and isinstance(seg["prompt"], str)):
            out.append(f"target 'then'[{k}] must be {{\"modality\": one of {TARGET_MODALITIES}, \"prompt\": a string}}"
                       f", got {seg!r:.60}")
        elif meta.prompt_problem(seg["modality"], seg["prompt"]):
            out.append(f"target 'then'[{k}] cannot be a meta-response: "
                       f"{meta.prompt_problem(seg['modality'], seg['prompt'])}")
    return out


# ---- reading and writing -----------------------------------------------------------------------------------
def _records_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p if p.suffix == ".jsonl" else p / RECORDS_FILE


def valid_unicode(value: object) -> bool:
    """Whether every string in ``value`` (a parsed JSON value) can be written as UTF-8: JSON's ``"\\ud800"`` gives
    a lone surrogate, a string no file, terminal or tokenizer accepts."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def record_lines(path: Path) -> Iterator[tuple[int, object, str | None]]:
    """(line number, parsed JSON or None, problem or None) for each non-blank line of a JSONL file.

    Lines are read as bytes with a bounded ``readline``: a line over ``MAX_RECORD_BYTES`` is a problem, skipped
    without ever being held whole in memory. Each line is decoded as UTF-8 on its own, so a bad byte is a
    problem on its line (never silently replaced).
    """
    with open(path, "rb") as f:
        number = 0
        while raw := f.readline(MAX_RECORD_BYTES + 1):
            number += 1
            if len(raw) > MAX_RECORD_BYTES:
                size = len(raw)
                while not raw.endswith(b"\n") and (raw := f.readline(MAX_RECORD_BYTES)):
                    size += len(raw)
                yield number, None, (f"line is {size:,} bytes, over the limit MAX_RECORD_BYTES = "
                                     f"{MAX_RECORD_BYTES:,}; a record holds short texts and media paths, not data")
                continue
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as err:
                yield number, None, (f"not valid UTF-8 at byte {err.start + 1} of the line "
                                     f"({raw[err.start:err.start + 4]!r}); save the file as UTF-8")
                continue
            yield number, *parse_line(text)


def parse_line(line: str) -> tuple[object, str | None]:
    """One JSON value, or what is wrong with the text: a problem, never an exception. A value nested deeper
    than ``MAX_NESTING`` is refused here, so no later (recursive) check can overflow the stack."""
    deep = f"malformed JSON: nested deeper than MAX_NESTING = {MAX_NESTING} levels"
    try:
        obj = json.loads(line.strip())
    except json.JSONDecodeError as err:
        return None, f"malformed JSON: {err.msg} at column {err.colno}"
    except RecursionError:
        return None, deep
    except ValueError as err:  # e.g. an integer of more than 4,300 digits
        return None, f"malformed JSON: {err}"
    level, depth = [obj], 0
    while level := [x for x in level if isinstance(x, (dict, list))]:  # breadth first, without recursion
        depth += 1
        level = [v for x in level for v in (x.values() if isinstance(x, dict) else x)]
    return (obj, None) if depth <= MAX_NESTING else (None, deep)


def media_path_problem(root: str | os.PathLike, modality: str, rel: str) -> str | None:
    """Why media path ``rel`` cannot name a file inside dataset folder ``root`` (None if it can).

    The one path rule of the package, cheap enough for every record read: lexical checks (empty, NUL, invalid
    Unicode, a name too long, absolute or a drive letter, ``..``), then one ``realpath`` for symlinks that
    leave ``root``. The file is not opened (the checker does that).
    """
    name = f"{modality} path {rel!r}"
    parts = re.split(r"[\\/]", rel)
    if not rel.strip():
        return f"empty {modality} path"
    if "\0" in rel:
        return f"{name} holds a NUL byte"
    if not valid_unicode(rel):
        return f"{name} holds a lone surrogate (invalid Unicode)"
    if any(len(p.encode("utf-8")) > MAX_NAME_BYTES for p in parts):
        return f"{name} has a name over MAX_NAME_BYTES = {MAX_NAME_BYTES} bytes, more than file systems allow"
    if os.path.isabs(rel) or rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel):
        return f"{name} is absolute; media paths must be relative to the dataset folder"
    if ".." in parts:
        return f"{name} uses '..' and escapes the dataset folder; keep media inside it"
    try:
        real_root, resolved = os.path.realpath(root), os.path.realpath(os.path.join(root, rel))
        inside = os.path.commonpath([real_root, resolved]) == real_root
    except (OSError, ValueError) as err:
        return f"{name} cannot be resolved: {err}"
    if not inside:
        return f"{name} is a symlink to {resolved}, outside the dataset folder; copy the file in instead"
    return None


def file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` is not a regular file (None if it is), from ``stat`` alone, so a FIFO is never opened:
    "does not exist", "is a folder", "is not a regular file (a FIFO)", "is a symlink loop", ..."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "is a broken symlink" if os.path.islink(path) else "does not exist"
    except OSError as err:
        return "is a symlink loop" if err.errno == errno.ELOOP else f"cannot be read ({err.strerror})"
    except ValueError as err:  # a NUL byte or a lone surrogate in the name
        return f"cannot be a file name ({err})"
    if stat.S_ISDIR(mode):
        return "is a folder"
    if not stat.S_ISREG(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device"
        return f"is not a regular file ({kind})"
    return None


def read_records(path: str | os.PathLike, split: str | None = None, strict: bool = True) -> list[Record]:
    """The records of a dataset folder (or a ``.jsonl`` file), optionally of one ``split``, in file order.

    ``strict`` raises DatasetError naming the file and line of the first bad line (and one for a file with no
    records); otherwise bad lines are skipped (``check_dataset`` lists them). A record whose media path leaves
    the folder is a bad line. Media files are not opened here.
    """
    file = _records_path(path)
    if not file.is_file():
        raise DatasetError(f"no {RECORDS_FILE} at {file}; build one with "
                           f"`python -m modaverse_lite data build --out DIR`")
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {SPLITS}")
    out, lines, paths = [], 0, {}  # paths: the problem of each media path, checked once
    for number, obj, err in record_lines(file):
        lines += 1
        try:
            if err:
                raise DatasetError(err)
            record = Record.from_dict(obj)
            for m in record.inputs:
                rel = record.media[m]
                if (m, rel) not in paths:
                    paths[m, rel] = media_path_problem(file.parent, m, rel)
                if paths[m, rel]:
                    raise DatasetError(paths[m, rel])
        except DatasetError as e:
            if strict:
                raise DatasetError(f"{file}:{number}: {e}; run `python -m modaverse_lite data check "
                                   f"{file.parent}` to list every problem") from None
            continue
        if split is None or record.split == split:
            out.append(record)
    if strict and not lines:
        raise DatasetError(f"{file}: no records (the file is empty or blank); build a dataset with "
                           f"`python -m modaverse_lite data build --out DIR`")
    return out


def write_records(records: Iterable[Record], path: str | os.PathLike) -> Path:
    """Write ``records`` (in the given order) to a folder's records.jsonl or a ``.jsonl`` file, atomically."""
    file = _records_path(path)
    files.write_text(file, "".join(r.to_json() + "\n" for r in records))
    return file


def write_manifest(out: Path, manifest: dict) -> None:
    files.write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


# ---- the checker -------------------------------------------------------------------------------------------
class Problem(NamedTuple):
    line: int  # 1-based line of records.jsonl; 0 for the folder itself
    id: str | None
    message: str


@dataclass
class CheckReport:
    """What ``check_dataset`` found: counts per pair and split, and every problem with its line."""

    root: str
    records: int = 0  # non-blank lines of records.jsonl
    valid: int = 0  # records without a problem
    problems: list[Problem] = field(default_factory=list)
    pairs: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def missing_pairs(self) -> list[str]:
        return [p for p in PAIRS if not self.pairs.get(p)]

    def to_dict(self) -> dict:
        return {"root": self.root, "ok": self.ok, "records": self.records, "valid": self.valid,
                "problems": len(self.problems),
                "problem_list": [{"line": p.line, "id": p.id, "message": p.message} for p in self.problems],
                "pairs": dict(self.pairs), "splits": dict(self.splits), "missing_pairs": self.missing_pairs}

    def format(self) -> str:
        lines = [f"{self.root}: {self.records} records, {self.valid} valid, {len(self.problems)} problems"]
        lines += ["pairs:"] + [f"  {p:<22} {c:>6}" for p, c in self.pairs.items()]
        lines += ["splits:"] + [f"  {s:<22} {c:>6}" for s, c in self.splits.items()]
        if self.missing_pairs:
            lines.append(f"pairs with no record: {', '.join(self.missing_pairs)}")
        lines += [f"line {p.line}{f' ({p.id})' if p.id else ''}: {p.message}" for p in self.problems]
        return "\n".join(lines).encode("utf-8", "backslashreplace").decode("utf-8")  # lone surrogates too


def _media_problem(root: Path, modality: str, rel: str, cache: dict[str, str | None]) -> str | None:
    """What is wrong with media path ``rel`` of ``modality`` (None if nothing); files are loaded once each."""
    key = f"{modality}:{rel}"
    if key not in cache:
        problem = media_path_problem(root, modality, rel)
        kind = None if problem else file_problem(root / rel)
        if kind == "does not exist":
            problem = f"missing {modality} file {rel!r}"
        elif kind:
            problem = f"{modality} path {rel!r} {kind}"
        elif not problem:
            try:
                found = media.modality_of(rel)
                if found != modality:
                    problem = f"{rel!r} is a {found} file but is listed as {modality}"
                else:
                    load_medium(modality, root / rel)
            except Exception as err:
                problem = f"unreadable {modality} file {rel!r}: {err}"
        cache[key] = problem
    return cache[key]


def check_dataset(path: str | os.PathLike) -> CheckReport:
    """Validate a dataset folder: every line of records.jsonl and every media file it names.

    Problems found: no records at all, a line over ``MAX_RECORD_BYTES`` or not UTF-8, malformed JSON, missing
    keys, wrong types, invalid Unicode, an unknown split or modality flag, an empty instruction or prompt, a pair
    that does not match media and target, a duplicate id, and media that are missing, not a regular file,
    unreadable, of the wrong kind, or outside the folder (``media_path_problem``).
    """
    file = _records_path(path)
    root = file.parent
    report = CheckReport(root=str(root), pairs={p: 0 for p in PAIRS}, splits={s: 0 for s in SPLITS})
    if not file.is_file():
        report.problems.append(Problem(0, None, f"no {RECORDS_FILE} in {root}"))
        return report
    seen_ids: dict[str, int] = {}
    cache: dict[str, str | None] = {}
    for number, obj, err in record_lines(file):
        report.records += 1
        messages = [err] if err else _structure_problems(obj)
        rid = obj.get("id") if isinstance(obj, dict) and isinstance(obj.get("id"), str) else None
        if isinstance(obj, dict):
            if isinstance(obj.get("pair"), str):
                report.pairs[obj["pair"]] = report.pairs.get(obj["pair"], 0) + 1
            if obj.get("split") in SPLITS:
                report.splits[obj["split"]] += 1
            if rid is not None:
                if rid in seen_ids:
                    messages.append(f"duplicate id {rid!r} (first on line {seen_ids[rid]})")
                else:
                    seen_ids[rid] = number
            if isinstance(obj.get("media"), dict):
                for m in MODALITIES:
                    rel = obj["media"].get(m)
                    if isinstance(rel, str):
                        problem = _media_problem(root, m, rel, cache)
                        if problem:
                            messages.append(problem)
        report.problems += [Problem(number, rid, msg) for msg in messages]
        report.valid += not messages
    if not report.records:
        report.problems.append(Problem(0, None, f"no records: {file} is empty or blank"))
    return report


def load_medium(modality: str, path: Path) -> None:
    """Open ``path`` as the loaders of training would (MediaError if it cannot be used)."""
    if modality == "image":
        media.load_image(path)
    elif modality == "audio":
        media.load_audio(path, world.SAMPLE_RATE)
    else:
        media.load_video(path, frames=world.VIDEO_FRAMES)
