"""The meta-response grammar: the contract between the LLM's words and the generators (I/O alignment).

The LLM never produces pixels or samples. It answers in words, and when the answer is media it writes a
*meta-response* that names the modality and a prompt for a text-to-X generator::

    Modality: [IMAGE] Prompt: a red circle

A response may hold several segments, one per line (a text segment may span lines)::

    Modality: [TEXT] Prompt: Here is a picture and its sound.
    Modality: [IMAGE] Prompt: a red circle
    Modality: [AUDIO] Prompt: a high sine tone

``format_meta`` / ``format_segments`` write this form; ``parse`` reads it back and **never raises**: whatever the
model wrote, it returns a ``MetaResponse`` with at least one segment, and ``notes`` that say, in words, everything
that was not canonical. ``ok`` is True only when there are no notes. The rules ``parse`` follows:

* Tolerated silently: any whitespace around the markers (``Modality:[IMAGE]Prompt:x``, ``Modality :  [ IMAGE ]``),
  and several segments on one line. A prompt is stripped; the spaces inside it are kept.
* Tolerated with a note: lower or mixed case (``modality: [image] prompt: x`` is still an image), and a stuttered
  ``Prompt: Prompt:`` (read as one). The segment is still routed.
* Falls back to text, with a note: anything that cannot be read — no ``Modality:`` marker at all (the whole
  response is a text answer), a missing, empty, unknown or unclosed flag (``[IMAG``), a missing ``Prompt:``, an
  empty prompt, or a prompt that holds another marker (``Prompt:`` or ``[IMAGE]`` again). Such a segment becomes a
  TEXT segment holding its raw words, so nothing the model wrote is lost and nothing unreadable reaches a generator.
* Also kept as text, with a note: words before the first ``Modality:`` marker, and later lines after a media
  prompt's line (a media prompt is one line). A ``Modality:`` marker with nothing after it (``Modality: Modality:``)
  is dropped, with a note.
* At most ``MAX_SEGMENTS`` ``Modality:`` segments are read: from the next marker on, the response is dropped, with
  a note (so one response asks for at most that many generated files, and a runaway model costs no more).

A prompt is *valid* (``prompt_problem`` returns None) when it is non-empty after stripping, holds no marker, and —
for media — no line break. For valid segments the grammar round-trips:
``parse(format_segments(segments)).segments == segments``.

``parse`` takes time linear in the length of the text: each regex scans forward from where the last one stopped.
This module is pure Python: no torch, no numpy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FLAGS = ("TEXT", "IMAGE", "AUDIO", "VIDEO")
TEXT, IMAGE, AUDIO, VIDEO = FLAGS
MODALITIES = tuple(flag.lower() for flag in FLAGS)  # "text", "image", "audio", "video"
MEDIA = MODALITIES[1:]
MAX_SEGMENTS = 16  # 'Modality:' segments read per response, so at most this many files are generated

# Markers are found case-insensitively, but only with ASCII case folding: "modalıty" (dotless i) is not a marker.
# A marker must start a word: "multimodality:" is not a "Modality:" marker.
_MODALITY = re.compile(r"(?<!\w)(?ai:modality)\s*:")
_PROMPTS = re.compile(r"\s*((?ai:prompt)\s*:)")  # one Prompt: marker at the start of the text, spaces before it
_PROMPT_ANYWHERE = re.compile(r"(?<!\w)(?ai:prompt)\s*:")
_FLAG = re.compile(r"\s*\[\s*(?:([^\[\]\s]+)\s*)?\]")  # written so that no text makes it backtrack long
_FLAG_ANYWHERE = re.compile(r"\[\s*([^\[\]\s]+)\s*\]")
_LINE_BREAK = re.compile(r"\r\n|[\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")  # where str.splitlines splits


@dataclass(frozen=True)
class Segment:
    """One piece of an answer: a modality name ("text", "image", "audio", "video") and its prompt."""

    modality: str
    prompt: str


@dataclass(frozen=True)
class MetaResponse:
    """What ``parse`` read: the segments, a note for everything that was not canonical, and the raw text."""

    segments: tuple[Segment, ...]
    notes: tuple[str, ...] = ()
    raw: str = ""

    @property
    def ok(self) -> bool:
        """True when the response was read without any note."""
        return not self.notes

    @property
    def modality(self) -> str:
        """The first segment's modality."""
        return self.segments[0].modality

    @property
    def prompt(self) -> str:
        """The first segment's prompt."""
        return self.segments[0].prompt


def _flag_of(modality: str) -> str:
    if not isinstance(modality, str) or modality.upper() not in FLAGS or not modality.isascii():
        raise ValueError(f"unknown modality {modality!r}; expected one of {MODALITIES}")
    return modality.upper()


def _marker_in(prompt: str) -> str | None:
    """The first marker inside ``prompt`` ("Prompt:", "Modality:" or a flag such as "[IMAGE]"), or None."""
    for pattern in (_MODALITY, _PROMPT_ANYWHERE):
        m = pattern.search(prompt)
        if m:
            return m.group()
    for m in _FLAG_ANYWHERE.finditer(prompt):
        if m.group(1).isascii() and m.group(1).upper() in FLAGS:
            return m.group()
    return None


def prompt_problem(modality: str, prompt: str) -> str | None:
    """Why ``prompt`` cannot be written in a meta-response of ``modality``, or None when it can."""
    _flag_of(modality)
    if not isinstance(prompt, str):
        return f"a prompt must be a str, got {type(prompt).__name__}"
    if not prompt.strip():
        return "the prompt is empty"
    if modality.lower() != "text" and _LINE_BREAK.search(prompt.strip()):
        return f"a {modality.lower()} prompt must be one line; {prompt!r} has a line break"
    marker = _marker_in(prompt)
    if marker:
        return f"the prompt {prompt!r} contains the marker {marker!r}, which would end or garble the segment"
    return None


def format_meta(modality: str, prompt: str) -> str:
    """``format_meta("image", "a red circle")`` → ``"Modality: [IMAGE] Prompt: a red circle"``.

    ``modality`` is a name or a flag in any case; the prompt is stripped. Raises ValueError for an unknown modality
    or a prompt that ``parse`` could not read back (see ``prompt_problem``).
    """
    flag = _flag_of(modality)
    problem = prompt_problem(modality, prompt)
    if problem:
        raise ValueError(f"cannot format a [{flag}] meta-response: {problem}")
    return f"Modality: [{flag}] Prompt: {prompt.strip()}"


def format_segments(segments) -> str:
    """Several segments (``Segment`` or ``(modality, prompt)`` pairs), one per line."""
    lines = [format_meta(*((s.modality, s.prompt) if isinstance(s, Segment) else s)) for s in segments]
    if not lines:
        raise ValueError("a meta-response needs at least one segment")
    return "\n".join(lines)


def _short(text: str, limit: int = 48) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


def _read_segment(raw: str, marker: str, body: str) -> tuple[list[Segment], list[str]]:
    """Read one ``Modality: ...`` segment: ``raw`` is all of it, ``body`` what follows the marker."""

    def as_text(why: str) -> tuple[list[Segment], list[str]]:
        return [Segment("text", raw.strip())], [f"{why}; kept as text: {_short(raw)}"]

    if not body.strip():
        return [], [f"a {marker!r} marker with nothing after it was dropped (a repeated marker?)"]
    flag_match = _FLAG.match(body)
    if flag_match is None:
        start = re.match(r"\s*(\[\s*[^\s\[\]]{0,12})", body)
        if start:
            return as_text(f"unclosed or garbled flag {_short(start.group(1), 16)}: expected e.g. [IMAGE]")
        return as_text("missing flag after 'Modality:': expected one of [TEXT], [IMAGE], [AUDIO], [VIDEO]")
    word = flag_match.group(1) or ""
    if not word:
        return as_text("empty flag []: expected one of [TEXT], [IMAGE], [AUDIO], [VIDEO]")
    if not word.isascii() or word.upper() not in FLAGS:
        return as_text(f"unknown flag [{word}]: expected one of [TEXT], [IMAGE], [AUDIO], [VIDEO]")
    flag, notes = word.upper(), []
    first, repeats, pos = "", 0, flag_match.end()
    while (m := _PROMPTS.match(body, pos)) is not None:  # match at a position: slicing each time is quadratic
        first, repeats, pos = first or m.group(1), repeats + 1, m.end()
    if not repeats:
        return as_text(f"missing 'Prompt:' after [{flag}]")
    if repeats > 1:
        notes.append(f"'Prompt:' repeated {repeats} times in the [{flag}] segment; read as one")
    rest = body[pos:]
    if not marker.startswith("Modality") or word != flag or not first.startswith("Prompt"):
        notes.append(f"non-canonical case in {_short(raw)}; read as [{flag}] (canonical: 'Modality: [{flag}] Prompt:')")
    rest, segments = rest.lstrip(), []
    if flag != TEXT:
        line, *later = _LINE_BREAK.split(rest, maxsplit=1)
        rest = line
        after = later[0].strip() if later else ""
        if after:
            segments.append(Segment("text", after))
            notes.append(f"words after the [{flag}] prompt's line kept as text: {_short(after)}")
    prompt = rest.strip()
    if not prompt:
        return as_text(f"empty prompt after [{flag}]")
    inner = _marker_in(prompt)
    if inner:
        return as_text(f"the [{flag}] prompt contains another marker {inner!r} (garbled)")
    return [Segment(flag.lower(), prompt)] + segments, notes


def parse(text) -> MetaResponse:
    """Read a meta-response. Never raises; see the module docstring for the rules."""
    if not isinstance(text, str):
        try:
            words = "" if text is None else str(text)
        except Exception:
            words = ""
        note = f"expected a str, got {type(text).__name__}; read as a text answer"
        return MetaResponse((Segment("text", words),), (note,), words)

    marks = _MODALITY.finditer(text)  # lazily: past MAX_SEGMENTS markers the rest is never scanned
    mark = next(marks, None)
    if mark is None:
        whole = text.strip()
        note = ("no 'Modality:' marker: the whole response is read as a text answer" if whole
                else "empty response: read as an empty text answer")
        return MetaResponse((Segment("text", whole),), (note,), text)

    segments: list[Segment] = []
    notes: list[str] = []
    before = text[: mark.start()].strip()
    if before:
        segments.append(Segment("text", before))
        notes.append(f"words before the first 'Modality:' marker kept as text: {_short(before)}")
    cut = len(text)
    for _ in range(MAX_SEGMENTS):
        after = next(marks, None)
        end = after.start() if after else len(text)
        segs, why = _read_segment(text[mark.start():end], mark.group(), text[mark.end():end])
        segments.extend(segs)
        notes.extend(why)
        if after is None:
            break
        mark = after
    else:  # a marker past the limit: drop it and everything after it
        cut = mark.start()
        notes.append(f"more than MAX_SEGMENTS={MAX_SEGMENTS} 'Modality:' segments: the {len(text) - cut:,} "
                     f"characters from the next marker on were dropped: {_short(text[cut:cut + 200])}")
    if not segments:  # only empty markers: "Modality:" or "Modality: Modality:"
        segments.append(Segment("text", text[:cut].strip()))
        notes.append("no readable segment: the whole response is read as a text answer")
    return MetaResponse(tuple(segments), tuple(notes), text)
