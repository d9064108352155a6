"""Instruction records: the JSONL schema, the builders that write datasets, and the checker that checks them.

ModaVerse learns I/O alignment from instructions whose *answer* is a meta-response, never media::

    instruction  "Turn this video into a sound."   + media/video/00042.gif
    target       Modality: [AUDIO] Prompt: a high sine tone

A dataset is a folder::

    DIR/records.jsonl                 one record per line, all splits, sorted by split then id
    DIR/media/{image,audio,video}/    NNNNN.png | NNNNN.wav | NNNNN.gif, shared between records
    DIR/manifest.json                 seed, recipe version, counts per split / pair / modality

Every record names its input→output ``pair`` (``"video+text->audio"``, ``"text->image"``, ``"text->text"``)
and a ``split``: ``train``; ``val`` and ``test`` (same distribution, media never used in training); ``unseen``
(attribute combinations held out of training, ``world.UNSEEN``); ``phrasing`` (templates unused in training).

Three ways to make one: ``build_world_dataset`` (every pair of the paper, from the synthetic world),
``build_from_captions`` (a teacher's own captioned media) and, for either, an optional ``paraphrase`` hook
that rewrites each instruction with an LLM, as the paper did with GPT. ``check_dataset`` reports every problem
with its line number; a bad record never stops a build or a check.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from . import files, media, meta, world
from .errors import DatasetError, MediaError

RECIPE_VERSION = 2
#: How many records share one medium on average: more distinct media teach the projections to generalise
#: (with one clip per 20 records the aligned model memorised clips and read motion poorly on held-out ones).
RECORDS_PER_MEDIUM = {"image": 3, "audio": 6, "video": 4}
RECORDS_FILE = "records.jsonl"
MANIFEST_FILE = "manifest.json"
SPLITS = ("train", "val", "test", "unseen", "phrasing")
MODALITIES = world.MODALITIES  # the media a record can carry: image, audio, video
TARGET_MODALITIES = (*MODALITIES, "text")
EXTENSIONS = {"image": ".png", "audio": ".wav", "video": ".gif"}  # GIF: lossless here, ~10x faster than MP4
VIDEO_FPS = 8
REQUIRED_KEYS = ("id", "split", "pair", "instruction", "media", "target", "captions")


def pair_name(inputs: Sequence[str], target: str) -> str:
    """``(["video"], "audio")`` → ``"video+text->audio"``; ``([], "image")`` → ``"text->image"``."""
    ordered = [m for m in MODALITIES if m in inputs]
    return "+".join([*ordered, "text"]) + "->" + target


#: Every input→output pair of the paper: X→text, text→X, X→Y and text→text.
PAIRS: list[str] = (
    [pair_name([m], "text") for m in MODALITIES]
    + [pair_name([], m) for m in MODALITIES]
    + [pair_name([x], y) for x in MODALITIES for y in MODALITIES if x != y]
    + [pair_name([], "text")]
)

# ---- instruction templates ---------------------------------------------------------------------------------
# Placeholders: {caption} (a world caption or a teacher's caption), {direction} (left/right/up/down).
# The last HELD_OUT_PER_PAIR phrasings of every pair are never used in train/val/test/unseen: they make the
# "phrasing" split. For text->text the last phrasing of every question kind is held out.
HELD_OUT_PER_PAIR = 2

_X_TO_TEXT = {
    "image": ["Describe this image.", "What is in this picture?", "What do you see here?",
              "Write a short caption for this image.", "What does this picture show?",
              "Tell me what is drawn in this image.", "Which shape and colour are in this picture?",
              "Name the object in this image.",
              "Could you put this picture into words?", "Summarise the image in a few words."],
    "audio": ["Describe this sound.", "What do you hear in this clip?", "What kind of tone is this?",
              "Write a short caption for this audio.", "Tell me what this sound is.",
              "How would you describe this tone?", "Name the pitch and timbre of this sound.",
              "What does this recording contain?",
              "Put this sound into words, please.", "Listen and say what tone it is."],
    "video": ["Describe this video.", "What happens in this clip?", "What is moving in this video?",
              "Write a short caption for this video.", "Tell me what this clip shows.",
              "Which shape moves in this video, and where to?", "Summarise this animation.",
              "What do you see in this video?",
              "Explain in a few words what the clip shows.", "Watch this and describe the motion."],
}
_TEXT_TO_X = {
    "image": ["Draw {caption}.", "Generate an image of {caption}.", "Show me a picture of {caption}.",
              "Paint {caption}.", "Create an image showing {caption}.",
              "Can you make a picture of {caption}?",
              "I would like an image of {caption}.", "Sketch {caption} for me.",
              "Render a still picture of {caption}.", "Please illustrate {caption}."],
    "audio": ["Play {caption}.", "Generate the sound of {caption}.", "Compose {caption}.",
              "Make a sound: {caption}.", "Create audio of {caption}.", "Can you synthesise {caption}?",
              "I want to hear {caption}.", "Produce {caption} for me.",
              "Let me listen to {caption}.", "Record {caption}, please."],
    "video": ["Animate {caption}.", "Generate a video of {caption}.", "Make a clip showing {caption}.",
              "Create an animation of {caption}.", "Show me a video of {caption}.", "Can you film {caption}?",
              "I would like a short video of {caption}.", "Produce an animated clip of {caption}.",
              "Render a moving picture of {caption}.", "Please make a movie of {caption}."],
}
_X_TO_Y = {
    ("image", "audio"): ["What would this image sound like?", "Turn this picture into a sound.",
                         "Play the sound of this image.", "Compose a tone that matches this picture.",
                         "Make this image audible.", "Generate the sound that belongs to this shape.",
                         "Give me audio for this picture.",
                         "Let me hear what this picture sounds like.", "Convert the image into a tone."],
    ("image", "video"): ["Make this image move {direction}.", "Animate this picture moving {direction}.",
                         "Turn this image into a video where it moves {direction}.",
                         "Create a clip of this shape going {direction}.",
                         "Bring this picture to life, moving {direction}.",
                         "Generate a video of this object heading {direction}.",
                         "Make a movie of this picture drifting {direction}.",
                         "Let this shape travel {direction} in a clip."],
    ("audio", "image"): ["Draw what this sound looks like.", "Show me a picture of this tone.",
                         "Turn this sound into an image.", "What would this tone look like? Draw it.",
                         "Paint this sound.", "Generate an image that matches this audio.",
                         "Make a picture for this sound.",
                         "Visualise this tone as a still image.", "Convert the audio into a picture."],
    ("audio", "video"): ["Animate this sound as a shape moving {direction}.",
                         "Turn this tone into a video moving {direction}.",
                         "Make a clip of this sound's shape going {direction}.",
                         "Show this sound as an animation heading {direction}.",
                         "Generate a video for this audio, moving {direction}.",
                         "Create an animation of this tone travelling {direction}.",
                         "Let this sound become a shape that drifts {direction}.",
                         "Convert the audio into a clip moving {direction}."],
    ("video", "image"): ["Show this clip as a still image.", "Freeze this video into a picture.",
                         "Draw the object in this video standing still.", "Turn this video into an image.",
                         "Make a still picture of what moves here.",
                         "Generate an image of this clip's shape.",
                         "Take a snapshot of the object in this video.",
                         "Convert the clip into a single picture.", "Paint this animation as a still frame."],
    ("video", "audio"): ["Turn this video into a sound.", "What would this clip sound like?",
                         "Play the sound of this video.", "Compose a tone that matches this clip.",
                         "Make this animation audible.", "Generate audio for this video.",
                         "Give me the sound of the moving shape.",
                         "Let me hear what this clip sounds like.", "Convert the video into a tone."],
}


@dataclass(frozen=True)
class _Question:
    """A kind of text→text question: about which media, answered how, in which phrasings."""

    kind: str  # "sound", "look", "still" or an attribute name
    subjects: tuple[str, ...]  # the modalities the question may be about
    phrasings: tuple[str, ...]  # the last one is held out


_QUESTIONS = (
    _Question("sound", ("image",), ("What does {caption} sound like?", "Which tone belongs to {caption}?",
                                    "If {caption} made a sound, what would it be?",
                                    "What is the sound of {caption}?")),
    _Question("look", ("audio",), ("What does {caption} look like?", "Which shape goes with {caption}?",
                                   "If {caption} were a picture, what would it show?",
                                   "What is the picture of {caption}?")),
    _Question("still", ("video",), ("What does {caption} look like standing still?",
                                    "Which object is {caption}?", "Without the motion, what is {caption}?")),
    _Question("colour", ("image", "video"), ("What colour is {caption}?", "Which colour does {caption} have?",
                                             "Name the colour of {caption}.")),
    _Question("shape", ("image", "video"), ("What shape is {caption}?", "Which shape is {caption}?",
                                            "Name the shape of {caption}.")),
    _Question("direction", ("video",), ("In which direction does {caption} go?", "Which way is {caption}?",
                                        "Where is {caption} heading?")),
    _Question("pitch", ("audio",), ("What pitch is {caption}?", "How high is {caption}?",
                                    "Name the pitch of {caption}.")),
    _Question("timbre", ("audio",), ("Which timbre does {caption} have?", "What waveform is {caption}?",
                                     "Name the timbre of {caption}.")),
)

#: Every phrasing of every pair, the held-out ones included (see ``HELD_OUT``).
TEMPLATES: dict[str, list[str]] = {
    **{pair_name([m], "text"): list(t) for m, t in _X_TO_TEXT.items()},
    **{pair_name([], m): list(t) for m, t in _TEXT_TO_X.items()},
    **{pair_name([x], y): list(t) for (x, y), t in _X_TO_Y.items()},
    pair_name([], "text"): [p for q in _QUESTIONS for p in q.phrasings],
}
#: The phrasings of each pair used only by the "phrasing" split.
HELD_OUT: dict[str, tuple[str, ...]] = {
    **{pair: tuple(t[-HELD_OUT_PER_PAIR:]) for pair, t in TEMPLATES.items() if pair != "text->text"},
    "text->text": tuple(q.phrasings[-1] for q in _QUESTIONS),
}


def train_templates(pair: str) -> list[str]:
    """The phrasings of ``pair`` that train/val/test/unseen records use."""
    return [t for t in TEMPLATES[pair] if t not in HELD_OUT[pair]]


# ---- the record --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What the model must answer: a modality flag and a prompt for its generator, or the answer itself."""

    modality: str  # "image" | "audio" | "video" | "text"
    prompt: str


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
        """The file of this record's ``modality`` input inside dataset folder ``root``."""
        rel = self.media.get(modality)
        if not rel:
            raise DatasetError(f"record {self.id!r} has no {modality} input; it has {self.inputs or 'none'}")
        return Path(root) / rel

    def response(self) -> str:
        """The meta-response the model is trained to answer: ``Modality: [IMAGE] Prompt: a red circle``."""
        return meta.format_meta(self.target.modality, self.target.prompt)

    def to_dict(self) -> dict:
        return {
            "id": self.id, "split": self.split, "pair": self.pair, "instruction": self.instruction,
            "media": {m: self.media.get(m) for m in MODALITIES},
            "target": {"modality": self.target.modality, "prompt": self.target.prompt},
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
                   target=Target(obj["target"]["modality"], obj["target"]["prompt"]),
                   captions=dict(obj["captions"]), attributes={m: dict(a) for m, a in
                                                               obj.get("attributes", {}).items()})


def response(record: Record) -> str:
    """The target meta-response of ``record`` (``meta.format_meta`` of its target)."""
    return record.response()


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
    if "captions" in obj and not is_str_map(obj["captions"]):
        wrong("captions", "an object of modality → caption strings")
    if "attributes" in obj and not (isinstance(obj["attributes"], dict)
                                    and all(is_str_map(a) for a in obj["attributes"].values())):
        wrong("attributes", "an object of modality → {attribute: value}")
    if media_ok and target_ok and isinstance(obj.get("pair"), str):
        expected = pair_name([m for m in MODALITIES if obj["media"].get(m)], obj["target"]["modality"])
        if obj["pair"] != expected:
            out.append(f"pair {obj['pair']!r} does not match the media and target; expected {expected!r}")
    return out


# ---- reading and writing -----------------------------------------------------------------------------------
def _records_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p if p.suffix == ".jsonl" else p / RECORDS_FILE


def _lines(path: Path) -> Iterable[tuple[int, str]]:
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield number, line


def _parse(line: str) -> tuple[object, str | None]:
    try:
        return json.loads(line.strip()), None
    except json.JSONDecodeError as err:
        return None, f"malformed JSON: {err.msg} at column {err.colno}"


def read_records(path: str | os.PathLike, split: str | None = None, strict: bool = True) -> list[Record]:
    """The records of a dataset folder (or a ``.jsonl`` file), optionally of one ``split``, in file order.

    ``strict`` raises DatasetError naming the file and line of the first bad line; otherwise bad lines are
    skipped (``check_dataset`` lists them). Media files are not opened here.
    """
    file = _records_path(path)
    if not file.is_file():
        raise DatasetError(f"no {RECORDS_FILE} at {file}; build one with "
                           f"`python -m modaverse_lite data build --out DIR`")
    if split is not None and split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {SPLITS}")
    out = []
    for number, line in _lines(file):
        obj, err = _parse(line)
        try:
            if err:
                raise DatasetError(err)
            record = Record.from_dict(obj)
        except DatasetError as e:
            if strict:
                raise DatasetError(f"{file}:{number}: {e}; run `python -m modaverse_lite data check "
                                   f"{file.parent}` to list every problem") from None
            continue
        if split is None or record.split == split:
            out.append(record)
    return out


def _atomic_write_text(path: Path, text: str) -> None:
    files.write_text(path, text)


def write_records(records: Iterable[Record], path: str | os.PathLike) -> Path:
    """Write ``records`` (in the given order) to a folder's records.jsonl or a ``.jsonl`` file, atomically."""
    file = _records_path(path)
    _atomic_write_text(file, "".join(r.to_json() + "\n" for r in records))
    return file


def _write_manifest(out: Path, manifest: dict) -> None:
    _atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _counts(records: Sequence[Record]) -> tuple[dict[str, int], dict[str, int]]:
    pairs = {p: 0 for p in PAIRS}
    splits = {s: 0 for s in SPLITS}
    for r in records:
        pairs[r.pair] = pairs.get(r.pair, 0) + 1
        splits[r.split] += 1
    return pairs, splits


_MEDIA_NAME = re.compile(r"^\d{5}\.[A-Za-z0-9]+$")  # the names builders give media files


def _prepare_out(out: Path) -> None:
    """Refuse a folder that holds something other than a dataset; clear a previous build's media files."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file; give a folder (it is created if missing)")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST_FILE).exists() and not (out / RECORDS_FILE).exists():
            raise DatasetError(f"{out} is not empty and holds no dataset; choose a new or empty folder")
        for m in MODALITIES:
            folder = out / "media" / m
            if folder.is_dir():
                for f in sorted(folder.iterdir()):
                    if _MEDIA_NAME.match(f.name):
                        f.unlink()


def _paraphrased(text: str, paraphrase: Callable[[str], str] | None, failures: list[str]) -> str:
    if paraphrase is None:
        return text
    try:
        new = paraphrase(text)
    except Exception as err:
        failures.append(f"{text!r}: {type(err).__name__}: {err}")
        return text
    if not isinstance(new, str) or not new.strip():
        failures.append(f"{text!r}: paraphrase returned {new!r}")
        return text
    return " ".join(new.split())


# ---- builder (a): the synthetic world ----------------------------------------------------------------------
def _combo(modality: str, attributes: dict[str, str]) -> tuple[str, ...]:
    return tuple(attributes[k] for k in world.ATTRIBUTES[modality])


def _is_unseen(modality: str, attributes: dict[str, str]) -> bool:
    return _combo(modality, attributes) in world.UNSEEN[modality]


def involves_unseen(record: Record) -> bool:
    """Whether any world object of ``record`` (input, target or the subject of a question) is held out."""
    return any(m in MODALITIES and _is_unseen(m, a) for m, a in record.attributes.items())


class _Pool:
    """The world media of one modality: a seen part cut into train/val/test media, and an unseen part."""

    def __init__(self, modality: str, n_seen: int, n_unseen: int, seed: int):
        self.modality = modality
        self.samples = world.generate(modality, n_seen, seed=seed, split="seen")
        self.samples += world.generate(modality, n_unseen, seed=seed, split="unseen")
        # world.generate deals combinations in shuffled rounds, so a leading block of k samples holds k
        # different combinations (all of them when k reaches their number): the first block is validation
        # media, the next test media, the rest training media
        k = max(round(0.1 * n_seen), min(len(world.combinations(modality, "seen")), round(0.15 * n_seen)))
        self.parts = {"val": list(range(k)), "test": list(range(k, 2 * k)),
                      "train": list(range(2 * k, n_seen))}
        self.parts["unseen"] = list(range(n_seen, n_seen + n_unseen))
        self.used: set[int] = set()

    def path(self, index: int) -> str:
        return f"media/{self.modality}/{index:05d}{EXTENSIONS[self.modality]}"


class _Cycler:
    """Hands out items of a list in shuffled rounds, so every item is used about equally often (seeded)."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.queues: dict[object, list] = {}

    def take(self, key: object, items: Callable[[], list]) -> object:
        queue = self.queues.setdefault(key, [])
        if not queue:
            options = items()
            if not options:
                raise DatasetError(f"no world media fits {key}; build more records (pools grow with them)")
            queue.extend(options[i] for i in self.rng.permutation(len(options))[::-1])
        return queue.pop()


_MEDIA_PART = {"train": "train", "val": "val", "test": "test", "phrasing": "test", "unseen": "unseen"}


def _world_record(pair: str, split: str, rng: np.random.Generator, pools: dict[str, _Pool],
                  cycler: _Cycler) -> Record:
    """One world record of ``pair`` for ``split`` (id left empty)."""
    inputs_part, target = pair.split("->")
    source = inputs_part.split("+")[0] if "+" in inputs_part else None
    held = split == "phrasing"
    unseen = split == "unseen"
    combos_split = "unseen" if unseen else "seen"

    def pick(options: Sequence) -> object:
        return options[int(rng.integers(len(options)))]

    def template(options: Sequence[str]) -> str:
        return pick([t for t in options if (t in HELD_OUT[pair]) == held])

    media_paths: dict[str, str | None] = {m: None for m in MODALITIES}
    attributes: dict[str, dict[str, str]] = {}

    if pair == "text->text":
        question = pick(_QUESTIONS)
        subject = pick(question.subjects)

        def fits(combo: tuple[str, ...]) -> bool:
            answer = _answer(question.kind, subject, dict(zip(world.ATTRIBUTES[subject], combo, strict=True)))
            return unseen or answer[0] is None or not _is_unseen(*answer[:2])

        combo = cycler.take((pair, split, question.kind, subject),
                            lambda: [c for c in world.combinations(subject, combos_split) if fits(c)])
        attrs = dict(zip(world.ATTRIBUTES[subject], combo, strict=True))
        answer_modality, answer_attrs, answer = _answer(question.kind, subject, attrs)
        attributes[subject] = attrs
        if answer_modality is not None:
            attributes[answer_modality] = answer_attrs
        instruction = template(question.phrasings).format(caption=world.caption(subject, attrs))
        return _make(split, pair, instruction, media_paths, Target("text", answer), attributes)

    if source is None:  # text -> X: the caption of an X is the prompt
        combo = cycler.take((pair, split), lambda: world.combinations(target, combos_split))
        attrs = dict(zip(world.ATTRIBUTES[target], combo, strict=True))
        attributes[target] = attrs
        text = world.caption(target, attrs)
        instruction = template(TEMPLATES[pair]).format(caption=text)
        return _make(split, pair, instruction, media_paths, Target(target, text), attributes)

    pool = pools[source]
    needs_direction = target == "video" and source != "video"

    def options() -> list[tuple[int, str | None]]:
        out = []
        for i in pool.parts[_MEDIA_PART[split]]:
            for d in (world.DIRECTIONS if needs_direction else (None,)):
                # outside the unseen split, an input whose translation is a held-out combination is not used
                attrs = pool.samples[i].attributes
                if target == "text" or unseen or not _is_unseen(target,
                                                                 world.translate(source, attrs, target, d)):
                    out.append((i, d))
        return out

    index, direction = cycler.take((pair, split), options)
    sample = pool.samples[index]
    pool.used.add(index)
    media_paths[source] = pool.path(index)
    attributes[source] = dict(sample.attributes)
    if target == "text":  # X -> text: the caption is the answer, so exact match is meaningful
        instruction = template(TEMPLATES[pair])
        return _make(split, pair, instruction, media_paths, Target("text", sample.caption), attributes)
    attrs = world.translate(source, sample.attributes, target, direction)
    attributes[target] = attrs
    instruction = template(TEMPLATES[pair]).format(direction=direction)
    target_caption = world.caption(target, attrs)
    return _make(split, pair, instruction, media_paths, Target(target, target_caption), attributes)


def _answer(kind: str, subject: str, attrs: dict[str, str]) -> tuple[str | None, dict[str, str], str]:
    """A text→text answer: (modality of the object it names or None, that object's attributes, the text)."""
    if kind in ("sound", "look", "still"):
        modality = {"sound": "audio", "look": "image", "still": "image"}[kind]
        answer_attrs = world.translate(subject, attrs, modality)
        return modality, answer_attrs, world.caption(modality, answer_attrs)
    return None, {}, attrs[kind]


def _make(split: str, pair: str, instruction: str, media_paths: dict[str, str | None], target: Target,
          attributes: dict[str, dict[str, str]]) -> Record:
    captions = {m: world.caption(m, a) for m, a in attributes.items()}
    return Record("", split, pair, instruction, media_paths, target, captions, attributes)


def _split_sizes(n: int) -> dict[str, int]:
    """5 % of the records for each held-out split (at least one record per pair each), the rest train."""
    held = max(round(0.05 * n), len(PAIRS))
    sizes = {s: held for s in SPLITS if s != "train"}
    sizes["train"] = n - sum(sizes.values())
    if sizes["train"] < len(PAIRS):
        raise DatasetError(f"{n} records are too few: every split needs every pair; "
                           f"ask for at least {5 * len(PAIRS)} records")
    return {s: sizes[s] for s in SPLITS}


def build_world_dataset(out: str | os.PathLike, profile="tiny", seed: int = 0, records: int | None = None,
                        paraphrase: Callable[[str], str] | None = None, progress: bool = True) -> dict:
    """Build the default instruction dataset from the synthetic world into folder ``out``; returns a summary.

    ``records`` defaults to ``profile.dataset_records``. Records are spread evenly over ``PAIRS`` in every
    split; media pools grow with the record count
    and each file is shared by the records that use it (``RECORDS_PER_MEDIUM``).
    The same ``seed`` gives byte-identical files.

    ``paraphrase`` is the paper's instruction-rewriting step, off by default: a function that takes one
    templated instruction and returns a rewording (e.g. a call to an LLM: ``lambda s: llm(f"Reword: {s}")``).
    It must keep the meaning, including any caption and direction in the text; its output replaces the
    instruction. A call that raises or returns nothing keeps the template's text (counted as
    ``paraphrase_failures``). Determinism then depends on the paraphraser.
    """
    from .profiles import get_profile

    started = time.perf_counter()
    profile = get_profile(profile)
    n = int(records if records is not None else profile.dataset_records)
    sizes = _split_sizes(n)
    out = Path(out)
    _prepare_out(out)

    pools = {}
    for m, per in RECORDS_PER_MEDIUM.items():
        total = -(-n // per)
        n_unseen = max(round(0.1 * total), 2 * len(world.UNSEEN[m]))
        pools[m] = _Pool(m, max(total - n_unseen, 100), n_unseen, seed)

    rng = np.random.default_rng([seed, RECIPE_VERSION, 2024])
    cycler = _Cycler(rng)
    failures: list[str] = []
    built: list[Record] = []
    for split, size in sizes.items():
        order = np.concatenate([rng.permutation(len(PAIRS)) for _ in range(size // len(PAIRS) + 1)])[:size]
        for i, p in enumerate(order):
            record = _world_record(PAIRS[int(p)], split, rng, pools, cycler)
            record.id = f"{split}-{i:05d}"
            record.instruction = _paraphrased(record.instruction, paraphrase, failures)
            built.append(record)

    written = {m: 0 for m in MODALITIES}
    jobs = [(m, i) for m in MODALITIES for i in sorted(pools[m].used)]
    for m, i in tqdm(jobs, desc="writing world media", unit="file", disable=not progress):
        sample, path = pools[m].samples[i], out / pools[m].path(i)
        path.parent.mkdir(parents=True, exist_ok=True)
        if m == "image":
            media.save_image(sample.data, path)
        elif m == "audio":
            media.save_audio(sample.data, path, world.SAMPLE_RATE)
        else:
            media.save_video(sample.data, path, fps=VIDEO_FPS)
        written[m] += 1

    write_records(built, out)
    pairs, splits = _counts(built)
    manifest = {
        "recipe": "world", "recipe_version": RECIPE_VERSION, "seed": seed, "profile": profile.name,
        "records": len(built), "splits": splits, "pairs": pairs, "media": written,
        "held_out_templates": {p: list(t) for p, t in HELD_OUT.items()},
        "unseen_combinations": {m: sorted("/".join(c) for c in world.UNSEEN[m]) for m in MODALITIES},
        "paraphrased": paraphrase is not None,
    }
    _write_manifest(out, manifest)
    brief = {k: v for k, v in manifest.items() if k not in ("held_out_templates", "unseen_combinations")}
    return {**brief, "out": str(out), "paraphrase_failures": len(failures),
            "seconds": round(time.perf_counter() - started, 2)}


# ---- builder (b): a teacher's own captioned media ----------------------------------------------------------
def _read_table(table: Path) -> list[tuple[int, dict]]:
    """(line number, row) of a CSV with the header ``file,caption`` or a JSONL of {"file", "caption"}."""
    rows = []
    if table.suffix.lower() == ".csv":
        with open(table, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"file", "caption"} <= {h.strip() for h in reader.fieldnames}:
                raise DatasetError(f"{table}: the first row must be the header 'file,caption'; "
                                   f"got {reader.fieldnames}")
            for row in reader:
                rows.append((reader.line_num, {(k or "").strip(): v for k, v in row.items()}))
    elif table.suffix.lower() in (".jsonl", ".json"):
        for number, line in _lines(table):
            obj, err = _parse(line)
            rows.append((number, obj if err is None and isinstance(obj, dict) else {"_error": err or
                                                                                    "not a JSON object"}))
    else:
        raise DatasetError(f"{table}: unknown table format {table.suffix!r}; use a .csv (file,caption) or a "
                           f".jsonl ({{\"file\": ..., \"caption\": ...}} per line)")
    return rows


def build_from_captions(table: str | os.PathLike, out: str | os.PathLike, seed: int = 0,
                        paraphrase: Callable[[str], str] | None = None, progress: bool = True) -> dict:
    """Turn a folder of captioned media into an instruction dataset in ``out``; returns a summary.

    ``table`` is a CSV (header ``file,caption``) or JSONL (``{"file": ..., "caption": ...}``); a relative
    ``file`` is relative to the table's folder. Each file's modality comes from ``media.modality_of``; it is
    checked by loading it and copied to ``out/media/<modality>/NNNNN<ext>``. Each item gives an X→text record
    (describe it; the answer is its caption) and a text→X record (the caption is the generator's prompt), from
    the same templates as the world. Items are split 80/10/10 into train/val/test, and the test items also get
    a "phrasing" record pair with held-out templates. Rows that cannot be used (missing or unreadable file,
    empty caption) are skipped and listed in the summary's ``skipped``. ``paraphrase``: as in
    ``build_world_dataset``.
    """
    table, out = Path(table), Path(out)
    if not table.is_file():
        raise DatasetError(f"caption table {table} does not exist")
    _prepare_out(out)
    skipped: list[str] = []
    items: list[tuple[str, Path, str]] = []  # (modality, source file, caption)
    rows = _read_table(table)
    for number, row in tqdm(rows, desc="checking media", unit="file", disable=not progress):
        where = f"{table.name}:{number}"
        if "_error" in row:
            skipped.append(f"{where}: {row['_error']}")
            continue
        file, text = row.get("file"), row.get("caption")
        if not isinstance(file, str) or not file.strip():
            skipped.append(f"{where}: no 'file'")
            continue
        if not isinstance(text, str) or not text.strip():
            skipped.append(f"{where}: empty caption for {file!r}")
            continue
        text = " ".join(text.split())
        problem = meta.prompt_problem("text", text)  # a caption holding "Prompt:" would garble it
        if problem:
            skipped.append(f"{where}: caption cannot be a prompt: {problem}")
            continue
        source = Path(file.strip())
        source = source if source.is_absolute() else table.parent / source
        try:
            modality = media.modality_of(source)
            if not source.is_file():
                raise MediaError(f"{source} does not exist")
            _load(modality, source)
        except Exception as err:
            skipped.append(f"{where}: {err}")
            continue
        items.append((modality, source, text))
    if not items:
        raise DatasetError(f"{table}: no usable rows ({len(skipped)} skipped: {skipped[:3]})")

    rng = np.random.default_rng([seed, RECIPE_VERSION, 7])
    n = len(items)
    n_hold = round(0.1 * n) if n >= 10 else (1 if n >= 3 else 0)
    order = rng.permutation(n)
    split_of = {int(i): "val" if k < n_hold else "test" if k < 2 * n_hold else "train"
                for k, i in enumerate(order)}

    failures: list[str] = []
    by_split: dict[str, list[Record]] = {s: [] for s in SPLITS}
    counters = {m: 0 for m in MODALITIES}
    for i, (modality, source, text) in enumerate(items):
        rel = f"media/{modality}/{counters[modality]:05d}{source.suffix.lower()}"
        counters[modality] += 1
        _copy_atomic(source, out / rel)
        parsed = world.parse_caption(text)
        attributes = {modality: parsed[1]} if parsed and parsed[0] == modality else {}
        split = split_of[i]
        for s in (split, "phrasing") if split == "test" else (split,):
            held = s == "phrasing"
            describe, generate = pair_name([modality], "text"), pair_name([], modality)
            for pair, media_paths in ((describe, {modality: rel}), (generate, {})):
                options = [t for t in TEMPLATES[pair] if (t in HELD_OUT[pair]) == held]
                instruction = options[int(rng.integers(len(options)))].format(caption=text)
                target = Target("text" if media_paths else modality, text)
                by_split[s].append(Record(
                    "", s, pair, _paraphrased(instruction, paraphrase, failures),
                    {m: media_paths.get(m) for m in MODALITIES}, target, {modality: text}, dict(attributes)))
    built = []
    for s in SPLITS:
        for k, record in enumerate(by_split[s]):
            record.id = f"{s}-{k:05d}"
            built.append(record)
    write_records(built, out)
    pairs, splits = _counts(built)
    manifest = {"recipe": "captions", "recipe_version": RECIPE_VERSION, "seed": seed, "source": table.name,
                "records": len(built), "splits": splits, "pairs": {p: c for p, c in pairs.items() if c},
                "media": counters, "skipped_rows": len(skipped), "paraphrased": paraphrase is not None}
    _write_manifest(out, manifest)
    return {**manifest, "out": str(out), "skipped": skipped, "paraphrase_failures": len(failures)}


def _copy_atomic(source: Path, dest: Path) -> None:
    with files.atomic_path(dest) as tmp:
        shutil.copyfile(source, tmp)


def _load(modality: str, path: Path) -> None:
    if modality == "image":
        media.load_image(path)
    elif modality == "audio":
        media.load_audio(path, world.SAMPLE_RATE)
    else:
        media.load_video(path, frames=world.VIDEO_FRAMES)


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
        return "\n".join(lines)


def _media_problem(root: Path, modality: str, rel: str, cache: dict[str, str | None]) -> str | None:
    """What is wrong with media path ``rel`` of ``modality`` (None if nothing); files are loaded once each."""
    key = f"{modality}:{rel}"
    if key in cache:
        return cache[key]
    problem: str | None = None
    if not rel.strip():
        problem = f"empty {modality} path"
    elif os.path.isabs(rel) or rel.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", rel):
        problem = f"{modality} path {rel!r} is absolute; media paths must be relative to the dataset folder"
    elif ".." in re.split(r"[\\/]", rel):
        problem = f"{modality} path {rel!r} uses '..' and escapes the dataset folder; keep media inside it"
    else:
        path = root / rel
        real_root = root.resolve()
        try:
            resolved = path.resolve()
        except (OSError, RuntimeError) as err:
            resolved, problem = None, f"{modality} path {rel!r} cannot be resolved: {err}"
        if resolved is not None:
            if resolved != real_root and real_root not in resolved.parents:
                problem = (f"{modality} path {rel!r} is a symlink to {resolved}, outside the dataset folder; "
                           f"copy the file in instead")
            elif not path.exists():
                problem = f"missing {modality} file {rel!r}"
            else:
                try:
                    kind = media.modality_of(path)
                    if kind != modality:
                        problem = f"{rel!r} is a {kind} file but is listed as {modality}"
                    else:
                        _load(modality, path)
                except Exception as err:
                    problem = f"unreadable {modality} file {rel!r}: {err}"
    cache[key] = problem
    return problem


def check_dataset(path: str | os.PathLike) -> CheckReport:
    """Validate a dataset folder: every line of records.jsonl and every media file it names.

    Problems found: malformed JSON, missing keys, wrong types, an unknown split or modality flag, an empty
    instruction or prompt, a pair that does not match media and target, a duplicate id, and media that are
    missing, unreadable, of the wrong kind, or outside the folder (absolute, ``..``, a symlink out).
    """
    file = _records_path(path)
    root = file.parent
    report = CheckReport(root=str(root), pairs={p: 0 for p in PAIRS}, splits={s: 0 for s in SPLITS})
    if not file.is_file():
        report.problems.append(Problem(0, None, f"no {RECORDS_FILE} in {root}"))
        return report
    seen_ids: dict[str, int] = {}
    cache: dict[str, str | None] = {}
    for number, line in _lines(file):
        report.records += 1
        obj, err = _parse(line)
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
    return report
