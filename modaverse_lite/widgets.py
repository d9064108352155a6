"""The assistant on screen: replies as HTML tables, generators side by side, and an ipywidgets demo.

The tables are HTML strings for ``IPython.display.HTML`` (media inline as data URIs, kept in the saved notebook),
built from ``plots.media_html`` and ``plots.html_table``: images as PNG, sounds as an ``<audio>`` player, clips as
animated GIFs.

``demo(assistant)`` builds the interactive demo: pick a world example or upload files (two at once — an image and a
sound — make a two-medium request, for a checkpoint trained on them: the ``demos`` profile), type an instruction,
press *Ask* (or Enter in the instruction box). It only builds widgets and returns at once, so a headless run
(papermill, CI) never waits for input; the button's work is ``Demo.ask()``, which a test (or a script) can call — or
press the button with ``demo.button.click()``. It works with ipywidgets 8 and with the ipywidgets 7 that Colab
ships (their ``FileUpload.value`` differ: ``uploaded_file``).
"""

from __future__ import annotations

import html
import os
import re
import time
from pathlib import Path

from . import media, plots
from .assistant import world_example
from .dispatch import Dispatcher
from .errors import MediaError, ModaVerseError
from .evaluate import marks
from .files import atomic_path
from .meta import format_meta, format_segments

MEDIA = ("image", "audio", "video")


def medium_html(modality: str, item, width: int = 128) -> str:
    """An input medium as the assistant takes it (a path, an array, audio as ``(array, rate)``) as inline HTML."""
    if modality == "audio" and isinstance(item, tuple):
        wave, rate = item
        return plots.media_html(wave, "audio", width, sample_rate=int(rate))
    return plots.media_html(item, modality, width)


def output_html(output, width: int = 128) -> str:
    """One ``dispatch.Output``: its medium, its text, or its error (in red)."""
    if output.error:
        return f'<span style="color:#c0392b">[{output.modality}] {html.escape(output.error)}</span>'
    if output.path is None:
        return f"<i>{html.escape(output.text or '')}</i>"
    return plots.media_html(output.path, output.modality, width)


def reply_rows(replies, media_inputs=None, width: int = 128, targets=None) -> list[dict]:
    """Table rows for ``assistant.Reply`` objects: instruction, input medium, meta-response, outputs, seconds.

    ``media_inputs`` lists, for each reply, what was passed with it (``{"image": array_or_path}``, ``{}`` or None).
    ``targets`` lists the right answer of each reply as ``(modality, prompt)``, e.g. ``("audio", "a mid sine
    tone")``, or a list of such pairs for a several-segment answer (or None where there is none): the rows then
    show it and mark the reply ✓ / ✗ (``evaluate.marks``; a several-segment answer is right only as a whole).
    """
    media_inputs = list(media_inputs) if media_inputs is not None else [None] * len(replies)
    targets = list(targets) if targets is not None else None
    if targets is not None and len(targets) != len(replies):
        raise ValueError(f"{len(replies)} replies but {len(targets)} targets; give one target (or None) per reply")
    rows = []
    for i, (reply, given) in enumerate(zip(replies, media_inputs)):
        shown = " ".join(medium_html(m, v, width) for m, v in (given or {}).items()) or "–"
        outputs = "<br/>".join(output_html(o, width) for o in reply.outputs)
        row = {"instruction": reply.instruction, "input": shown}
        if targets is not None:
            target = targets[i]
            several = bool(target) and not isinstance(target[0], str)  # [(modality, prompt), ...]: several segments
            row["target"] = (format_segments(target) if several else format_meta(*target)) if target else "–"
        row["meta-response"] = reply.meta_response
        if targets is not None:
            if not target:
                row.update({"routing": "–", "exact": "–"})
            else:
                row.update(marks(target, reply.meta_response) if several else marks(*target, reply.meta_response))
        rows.append({**row, "output": outputs, "seconds": round(reply.seconds, 2)})
    return rows


def reply_table(replies, media_inputs=None, width: int = 128, targets=None) -> str:
    """``reply_rows`` as an HTML table, for ``IPython.display.HTML``."""
    return plots.html_table(reply_rows(replies, media_inputs, width, targets), html_columns=("input", "output"),
                            digits=2)


def generator_table(replies, registries: dict, out_dir: str | os.PathLike, seed: int = 0, width: int = 128) -> str:
    """The same meta-responses drawn by several generator registries, side by side (one column per registry).

    ``registries`` maps a column title to a ``dispatch.Registry``; files are written under ``out_dir``.
    """
    dispatchers = {name: Dispatcher(registry, out_dir) for name, registry in registries.items()}
    rows = []
    for reply in replies:
        row = {"meta-response": reply.meta_response}
        for name, dispatcher in dispatchers.items():
            row[name] = "<br/>".join(output_html(o, width) for o in dispatcher(reply.parsed, seed=seed))
        rows.append(row)
    return plots.html_table(rows, html_columns=tuple(registries))


# ---- the interactive demo ----------------------------------------------------------------------------------------
#: The world examples the demo offers: (label, (modality, caption)).
EXAMPLES = (("image: a red circle", ("image", "a red circle")),
            ("image: a blue triangle", ("image", "a blue triangle")),
            ("audio: a high square tone", ("audio", "a high square tone")),
            ("audio: a low sine tone", ("audio", "a low sine tone")),
            ("video: a green diamond moving left", ("video", "a green diamond moving left")),
            ("video: an orange square moving up", ("video", "an orange square moving up")))
_ACCEPT = ",".join(media.IMAGE_EXTS + media.AUDIO_EXTS + media.VIDEO_EXTS)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
_NO_MEDIUM = "none"  # the dropdown's value for "(no medium)": None would show an empty dropdown
_SUBMIT_AND_CLICK = 1.0  # seconds: a click this soon after Enter/leaving the box asked the same is not asked twice


def uploaded_files(value) -> list[tuple[str, bytes]]:
    """``(file name, bytes)`` of every file in a ``FileUpload.value`` (ipywidgets 8 or 7, as ``uploaded_file``)."""
    if not value:
        return []
    if isinstance(value, dict):  # ipywidgets 7
        return [uploaded_file({name: item}) for name, item in value.items()]
    if isinstance(value, (tuple, list)):  # ipywidgets 8
        return [uploaded_file((item,)) for item in value]
    return [uploaded_file(value)]  # raises the MediaError naming the type


def uploaded_file(value) -> tuple[str, bytes] | None:
    """``(file name, bytes)`` of the first file in a ``FileUpload.value``, or None when nothing was uploaded.

    ipywidgets 8 gives a tuple of dicts ``({"name", "type", "size", "content": memoryview, ...},)``; ipywidgets 7
    (Colab's) a dict ``{name: {"metadata": {"name", "type", "size", ...}, "content": bytes}}``. Both are read.
    """
    if not value:
        return None
    if isinstance(value, dict):  # ipywidgets 7
        name, item = next(iter(value.items()))
        name = (item.get("metadata") or {}).get("name", name)
    elif isinstance(value, (tuple, list)):  # ipywidgets 8
        item = value[0]
        name = item.get("name", "")
    else:
        raise MediaError(f"cannot read an upload of type {type(value).__name__}; expected the value of an "
                         "ipywidgets FileUpload (a tuple in ipywidgets 8, a dict in ipywidgets 7)")
    if "content" not in item:
        raise MediaError(f"the upload {name!r} has no content; upload the file again")
    return str(name), bytes(item["content"])


class Demo:
    """The widgets of the assistant demo; ``widget`` is the box a notebook shows, ``ask()`` the button's work."""

    def __init__(self, assistant, instruction: str = "Draw a red circle.", examples=EXAMPLES, seed: int = 0):
        import ipywidgets as w

        self.assistant, self.seed = assistant, seed
        options = [("(no medium)", _NO_MEDIUM), *examples]
        self.example = w.Dropdown(options=options, value=options[0][1], description="example")
        self.upload = w.FileUpload(accept=_ACCEPT, multiple=True, description="or upload")  # one file per medium
        # continuous_update=False: the value changes on Enter (or on leaving the box), which asks; ipywidgets 8
        # deprecates Text.on_submit in favour of exactly this
        self.instruction = w.Text(value=instruction, description="instruction", continuous_update=False,
                                  layout=w.Layout(width="60%"))
        self.button = w.Button(description="Ask", button_style="primary", icon="paper-plane")
        self.status = w.HTML()
        self.result = w.HTML()
        self.widget = w.VBox([w.HBox([self.example, self.upload]), w.HBox([self.instruction, self.button]),
                              self.status, self.result])
        self.last = None  # the last Reply
        self.error: str | None = None  # the last error message, if the last ask failed
        self._submitted: tuple | None = None  # (instruction, when it finished) of the last ask that Enter made
        self.button.on_click(lambda _button: self._clicked())
        self.instruction.observe(self._submit, names="value")

    def _submit(self, change) -> None:
        """Enter in the instruction box (or leaving it after an edit): ask."""
        self.ask()
        self._submitted = (change["new"], time.monotonic())

    def _clicked(self) -> None:
        """The Ask button; a click right after an edit first leaves the box, which has asked already."""
        if self._submitted is not None:
            text, when = self._submitted
            self._submitted = None
            if text == self.instruction.value and time.monotonic() - when < _SUBMIT_AND_CLICK:
                return
        self.ask()

    def medium(self) -> dict:
        """What to pass with the instruction: the uploaded files (they win: one per medium, e.g. an image and a
        sound) or the chosen world example, or nothing."""
        uploads = uploaded_files(self.upload.value)
        if uploads:
            given = {}
            for upload in uploads:
                name = _SAFE.sub("_", Path(upload[0]).name).lstrip(".") or "upload"
                modality = media.modality_of(name)  # MediaError for an extension we cannot read
                if modality in given:
                    raise MediaError(f"two {modality} uploads ({given[modality].name} and {name}); upload at most "
                                     f"one file per medium (e.g. an image and a sound)")
                folder = self.assistant.out_dir / "uploads"
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / name
                with atomic_path(path) as tmp:
                    tmp.write_bytes(upload[1])
                given[modality] = path
            return {m: given[m] for m in MEDIA if m in given}  # the order the model splices them in
        if self.example.value in (None, _NO_MEDIUM):
            return {}
        modality, caption = self.example.value
        return {modality: world_example(modality, caption, seed=self.seed)}

    def ask(self):
        """Run the assistant on the current inputs and show the reply; errors are shown, not raised."""
        self.error = None
        self.status.value = "<i>thinking…</i>"
        try:
            given = self.medium()
            reply = self.assistant(self.instruction.value, seed=self.seed, **given)
        except ModaVerseError as err:
            return self._fail(str(err))
        except Exception as err:
            return self._fail(f"unexpected {type(err).__name__}: {err}")
        self.last = reply
        notes = "".join(f"<br/><small>note: {html.escape(n)}</small>" for n in (*reply.parsed.notes, *reply.caveats))
        self.status.value = f"<code>{html.escape(reply.meta_response)}</code>{notes}"
        self.result.value = reply_table([reply], [given])
        return reply

    def _fail(self, message: str) -> None:
        self.error = message
        self.status.value = f'<span style="color:#c0392b">{html.escape(message)}</span>'
        self.result.value = ""

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def demo(assistant, instruction: str = "Draw a red circle.", seed: int = 0) -> Demo:
    """The interactive demo for ``assistant`` (a ``assistant.Assistant``); the last line of a cell shows it."""
    return Demo(assistant, instruction, seed=seed)
