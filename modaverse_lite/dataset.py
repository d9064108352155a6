"""Builders: instruction datasets from the synthetic world, or from a teacher's own captioned media.

Both write the schema of ``records.py`` into a folder. ``build_world_dataset`` covers every pair of the paper
(``instructions.PAIRS``) from the synthetic world; ``build_from_captions`` turns a CSV / JSONL of (file, caption)
into describe-it and generate-it records. Either takes an optional ``paraphrase`` hook that rewrites each
instruction with an LLM, as the paper did with GPT. ``default_dataset`` is the folder the notebooks share, built
on first use.

A build never loses the dataset that was there: it checks its input first, holds the folder's lock
(``files.locked``: a second writer gets a BusyError at once), writes into a temporary folder and swaps it in only
when everything is written (``files.atomic_dir``). It refuses a folder holding files it did not write.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import edits, files, media, meta, world
from .errors import DatasetError, MediaError
from .files import default_dataset_dir
from .instructions import (
    HELD_OUT,
    MODALITIES,
    PAIRS,
    QUESTIONS,
    RECIPE_VERSION,
    TEMPLATES,
    held_out,
    pair_name,
    pairs_of,
)
from .profiles import Profile, get_profile
from .records import (
    MANIFEST_FILE,
    RECORDS_FILE,
    SPLITS,
    Record,
    Target,
    file_problem,
    load_medium,
    record_lines,
    valid_unicode,
    write_manifest,
    write_records,
)

#: How many records share one medium on average: more distinct media teach the projections to generalise
#: (with one clip per 20 records the aligned model memorised clips and read motion poorly on held-out ones).
RECORDS_PER_MEDIUM = {"image": 3, "audio": 6, "video": 4}
EXTENSIONS = {"image": ".png", "audio": ".wav", "video": ".gif"}  # GIF: lossless here, ~10x faster than MP4
VIDEO_FPS = 8
MAX_CAPTION_CHARS = 1000  # a caption of a teacher's table: a prompt and an answer, a sentence, not a document


def default_dataset(profile: str | Profile = "auto", seed: int = 0, records: int | None = None) -> Path:
    """The default world dataset of a profile (``profile.dataset_records`` records of ``profile.pairs``), built on
    first use."""
    out = default_dataset_dir(profile, seed, records)
    if not (out / MANIFEST_FILE).exists():
        with files.locked(out, wait=-1, what="dataset"):  # another notebook may be building it: wait for it
            if not (out / MANIFEST_FILE).exists():
                p = get_profile(profile)
                n = p.dataset_records if records is None else records
                _build_world(out, int(n), seed, None, True, pairs_of(p.pairs))
    return out


def _counts(records: Sequence[Record], names: Sequence[str] = PAIRS) -> tuple[dict[str, int], dict[str, int]]:
    pairs = {p: 0 for p in names}
    splits = {s: 0 for s in SPLITS}
    for r in records:
        pairs[r.pair] = pairs.get(r.pair, 0) + 1
        splits[r.split] += 1
    return pairs, splits


_MEDIA_NAME = re.compile(r"^\d{5}\.[A-Za-z0-9]+$")  # the names builders give media files


def _written_by_a_build(rel: tuple[str, ...], path: Path) -> bool:
    """Whether ``path`` (``rel`` inside a dataset folder) is something a builder writes there."""
    if rel in ((RECORDS_FILE,), (MANIFEST_FILE,)):
        return path.is_file()
    if rel[0] != "media" or len(rel) > 1 and rel[1] not in MODALITIES:
        return False
    if len(rel) < 3:
        return path.is_dir() and not path.is_symlink()
    return len(rel) == 3 and bool(_MEDIA_NAME.match(rel[2])) and path.is_file() and not path.is_symlink()


def _check_out(out: Path) -> None:
    """Refuse an ``out`` that is a file, or a folder holding anything a build did not write: a build replaces
    the whole folder, so a teacher's notes or media left inside would be lost."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"--out {out} is a file; give a folder (it is created if missing)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / MANIFEST_FILE).exists() and not (out / RECORDS_FILE).exists():
        raise DatasetError(f"{out} is not empty and holds no dataset; choose a new or empty folder")
    foreign = [p.relative_to(out).as_posix() for p in sorted(out.rglob("*"))
               if not _written_by_a_build(p.relative_to(out).parts, p)]
    if foreign:
        raise DatasetError(f"{out} holds {len(foreign)} paths a build did not write ({', '.join(foreign[:5])}); "
                           f"a rebuild replaces the whole folder: move them out, or choose another --out")


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
    """Whether any world object of ``record`` (input, target, an edit's result or the subject of a question) is
    held out."""
    return edits.involves_unseen(record)


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

    def under_way(self, key: object) -> bool:
        """Whether a round of ``key`` still has items to hand out."""
        return bool(self.queues.get(key))


_MEDIA_PART = {"train": "train", "val": "val", "test": "test", "phrasing": "test", "unseen": "unseen"}


def _world_record(pair: str, split: str, rng: np.random.Generator, pools: dict[str, _Pool],
                  cycler: _Cycler) -> Record:
    """One world record of ``pair`` for ``split`` (id left empty); the demo pairs' come from ``edits.demo_record``."""
    if pair not in PAIRS:
        return edits.demo_record(pair, split, rng, pools, cycler)
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
        question = pick(QUESTIONS)
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


def _split_sizes(n: int, pairs: int = len(PAIRS)) -> dict[str, int]:
    """5 % of the records for each held-out split (at least one record per pair each), the rest train."""
    held = max(round(0.05 * n), pairs)
    sizes = {s: held for s in SPLITS if s != "train"}
    sizes["train"] = n - sum(sizes.values())
    if sizes["train"] < pairs:
        raise DatasetError(f"{n} records are too few: every split needs every pair; "
                           f"ask for at least {5 * pairs} records")
    return {s: sizes[s] for s in SPLITS}


def build_world_dataset(out: str | os.PathLike, records: int = 12_000, seed: int = 0,
                        paraphrase: Callable[[str], str] | None = None, progress: bool = True,
                        pairs: str = "default") -> dict:
    """Build the default instruction dataset from the synthetic world into folder ``out``; returns a summary.

    ``records`` is how many to write (the profiles' ``dataset_records``). Records are spread evenly over ``PAIRS``
    in every split; media pools grow with the record count and each file is shared by the records that use it
    (``RECORDS_PER_MEDIUM``).
    The same ``seed`` gives byte-identical files.

    ``paraphrase`` is the paper's instruction-rewriting step, off by default: a function that takes one
    templated instruction and returns a rewording (e.g. a call to an LLM: ``lambda s: llm(f"Reword: {s}")``).
    It must keep the meaning, including any caption and direction in the text; its output replaces the
    instruction. A call that raises or returns nothing keeps the template's text (counted as
    ``paraphrase_failures``). Determinism then depends on the paraphraser.

    ``pairs``: ``"default"`` (``instructions.PAIRS``, the dataset every measured figure used) or ``"all"``
    (``instructions.ALL_PAIRS``: the default pairs and the demo requests of ``edits.py`` — edits, two media in,
    two outputs out). ``"default"`` draws exactly the random numbers it always drew: the same files.

    A second writer of ``out`` gets a BusyError; on any error ``out`` is left as it was (module docstring).
    """
    out = Path(out)
    names = pairs_of(pairs)  # an unknown value: refused before anything is locked or written
    _split_sizes(int(records), len(names))  # too few records: refused before anything is locked or written
    with files.locked(out, what="dataset"):
        return _build_world(out, int(records), seed, paraphrase, progress, names)


def _build_world(out: Path, n: int, seed: int, paraphrase: Callable[[str], str] | None, progress: bool,
                 names: Sequence[str] = PAIRS) -> dict:
    """``build_world_dataset`` inside the lock, which its caller holds; ``names`` are the pairs to cover."""
    started = time.perf_counter()
    sizes = _split_sizes(n, len(names))
    _check_out(out)

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
        order = np.concatenate([rng.permutation(len(names)) for _ in range(size // len(names) + 1)])[:size]
        for i, p in enumerate(order):
            record = _world_record(names[int(p)], split, rng, pools, cycler)
            record.id = f"{split}-{i:05d}"
            record.instruction = _paraphrased(record.instruction, paraphrase, failures)
            built.append(record)

    written = {m: 0 for m in MODALITIES}
    jobs = [(m, i) for m in MODALITIES for i in sorted(pools[m].used)]
    pairs, splits = _counts(built, names)
    manifest = {
        "recipe": "world", "recipe_version": RECIPE_VERSION, "seed": seed,
        "records": len(built), "splits": splits, "pairs": pairs, "media": written,
        "held_out_templates": {p: list(held_out(p)) for p in names},
        "unseen_combinations": {m: sorted("/".join(c) for c in world.UNSEEN[m]) for m in MODALITIES},
        "paraphrased": paraphrase is not None, **({"pair_set": "all"} if list(names) != PAIRS else {}),
    }
    with files.atomic_dir(out) as tmp:
        for m, i in tqdm(jobs, desc="writing world media", unit="file", disable=not progress):
            sample, path = pools[m].samples[i], tmp / pools[m].path(i)
            path.parent.mkdir(parents=True, exist_ok=True)
            if m == "image":
                media.save_image(sample.data, path)
            elif m == "audio":
                media.save_audio(sample.data, path, world.SAMPLE_RATE)
            else:
                media.save_video(sample.data, path, fps=VIDEO_FPS)
            written[m] += 1
        write_records(built, tmp)
        write_manifest(tmp, manifest)
    brief = {k: v for k, v in manifest.items() if k not in ("held_out_templates", "unseen_combinations")}
    return {**brief, "out": str(out), "paraphrase_failures": len(failures),
            "seconds": round(time.perf_counter() - started, 2)}


# ---- builder (b): a teacher's own captioned media ----------------------------------------------------------
def _table_text(table: Path) -> str:
    """The text of a CSV table: UTF-8 (a byte-order mark is allowed) or UTF-16 with its byte-order mark, as
    spreadsheets save them. Anything else is refused, naming the line and byte of the first bad byte."""
    raw = table.read_bytes()
    utf16 = raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        text = raw.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw.count(b"\n", 0, err.start) + 1
        raise DatasetError(f"{table}: a caption table must be UTF-8 (or UTF-16 with a byte-order mark); line {line} "
                           f"is not (byte {err.start + 1} of the file: {raw[err.start:err.start + 1]!r}). Save it as "
                           f"'CSV UTF-8', or convert it: `iconv -f latin1 -t utf-8 in.csv > out.csv`") from None
    if "\0" in text:
        raise DatasetError(f"{table}: holds NUL characters: UTF-16 without a byte-order mark? Save it as UTF-8")
    return text


def _read_table(table: Path) -> list[tuple[int, dict]]:
    """(line number, row) of a CSV with the header ``file,caption`` or a JSONL of {"file", "caption"}; a row that
    cannot be parsed is ``{"_error": why}``."""
    if table.suffix.lower() in (".jsonl", ".json"):  # JSON is UTF-8: record_lines reads it line by line
        return [(number, obj if isinstance(obj, dict) else {"_error": err or "not a JSON object"})
                for number, obj, err in record_lines(table)]
    if table.suffix.lower() != ".csv":
        raise DatasetError(f"{table}: unknown table format {table.suffix!r}; use a .csv (file,caption) or a "
                           f".jsonl ({{\"file\": ..., \"caption\": ...}} per line)")
    text = _table_text(table)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, len(text) + 1))  # no field is too long to read: _row_item caps captions
    try:
        header = reader.fieldnames
        if not header or not {"file", "caption"} <= {h.strip() for h in header}:
            raise DatasetError(f"{table}: the first row must be the header 'file,caption'; got {header}")
        return [(reader.line_num, {(k or "").strip(): v for k, v in row.items()}) for row in reader]
    except csv.Error as err:
        raise DatasetError(f"{table}:{reader.line_num}: {err}") from None
    finally:
        csv.field_size_limit(limit)


def _row_item(row: dict, base: Path) -> tuple[str, Path, str] | str:
    """(modality, media file, caption) of one table row, or why the row cannot be used. The file is checked by
    ``stat`` before it is loaded, so a FIFO is never opened."""
    file, text = row.get("file"), row.get("caption")
    if "_error" in row:
        return row["_error"]
    if not isinstance(file, str) or not file.strip():
        return "no 'file'"
    if not isinstance(text, str) or not text.strip():
        return f"empty caption for {file!r}"
    for what, value in (("file name", file), ("caption", text)):
        if not valid_unicode(value):
            return f"the {what} {value!r:.80} holds a lone surrogate (invalid Unicode)"
    text = " ".join(text.split())
    if len(text) > MAX_CAPTION_CHARS:
        return (f"the caption of {file!r} has {len(text):,} characters, over the limit MAX_CAPTION_CHARS = "
                f"{MAX_CAPTION_CHARS:,}; shorten it")
    problem = meta.prompt_problem("text", text)  # a caption holding "Prompt:" would garble it
    if problem:
        return f"caption cannot be a prompt: {problem}"
    source = Path(file.strip())
    source = source if source.is_absolute() else base / source
    try:
        modality = media.modality_of(source)
        kind = file_problem(source)
        if kind:
            raise MediaError(f"{source} {kind}")
        load_medium(modality, source)
    except Exception as err:
        return str(err)
    return modality, source, text


def build_from_captions(table: str | os.PathLike, out: str | os.PathLike, seed: int = 0,
                        paraphrase: Callable[[str], str] | None = None, progress: bool = True) -> dict:
    """Turn a folder of captioned media into an instruction dataset in ``out``; returns a summary.

    ``table`` is a CSV (header ``file,caption``; UTF-8, or UTF-16 with a byte-order mark) or JSONL
    (``{"file": ..., "caption": ...}``); a relative ``file`` is relative to the table's folder. Each file's
    modality comes from ``media.modality_of``; it is checked by loading it and copied to
    ``out/media/<modality>/NNNNN<ext>``. Each item gives an X→text record (describe it; the answer is its
    caption) and a text→X record (the caption is the generator's prompt), from the same templates as the world.
    Items are split 80/10/10 into train/val/test, and the test items also get a "phrasing" record pair with
    held-out templates. Rows that cannot be used (a missing, unreadable or non-regular file, an empty caption or
    one over ``MAX_CAPTION_CHARS``, invalid Unicode) are skipped and listed in the summary's ``skipped``.
    ``paraphrase``: as in ``build_world_dataset``. Writing ``out`` is as safe as there (module docstring).
    """
    table, out = Path(table), Path(out)
    problem = file_problem(table)
    if problem:
        raise DatasetError(f"caption table {table} {problem}")
    with files.locked(out, what="dataset"):
        _check_out(out)
        return _build_captions(table, out, seed, paraphrase, progress)


def _build_captions(table: Path, out: Path, seed: int, paraphrase: Callable[[str], str] | None,
                    progress: bool) -> dict:
    """``build_from_captions`` inside the lock: every row is checked before anything is written."""
    skipped: list[str] = []
    items: list[tuple[str, Path, str]] = []  # (modality, source file, caption)
    for number, row in tqdm(_read_table(table), desc="checking media", unit="file", disable=not progress):
        item = _row_item(row, table.parent)
        if isinstance(item, str):
            skipped.append(f"{table.name}:{number}: {item}")
        else:
            items.append(item)
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
    copies: list[tuple[Path, str]] = []
    for i, (modality, source, text) in enumerate(items):
        rel = f"media/{modality}/{counters[modality]:05d}{source.suffix.lower()}"
        counters[modality] += 1
        copies.append((source, rel))
        found = world.attributes_of(text, modality)
        attributes = {modality: found} if found else {}
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
    pairs, splits = _counts(built)
    manifest = {"recipe": "captions", "recipe_version": RECIPE_VERSION, "seed": seed, "source": table.name,
                "records": len(built), "splits": splits, "pairs": {p: c for p, c in pairs.items() if c},
                "media": counters, "skipped_rows": len(skipped), "paraphrased": paraphrase is not None}
    with files.atomic_dir(out) as tmp:
        for source, rel in copies:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, tmp / rel)
        write_records(built, tmp)
        write_manifest(tmp, manifest)
    return {**manifest, "out": str(out), "skipped": skipped, "paraphrase_failures": len(failures)}
