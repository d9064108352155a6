"""modaverse_lite — a tutorial reproduction of ModaVerse: any-to-any by I/O alignment in natural language.

One import for the whole road::

    import modaverse_lite as mv
    data = mv.default_dataset("tiny")                              # instruction records, targets are meta-responses
    run = mv.align_train(mv.TrainConfig.from_profile("tiny", data_dir=data, out_dir="runs/align"))
    reply = mv.Assistant("runs/align")("Draw a red circle.")        # meta-response → generator → file

These names are the public API (the notebooks use no others); each lives in the module named after its idea.
"""

from . import claim, compare, edits, media, plots, world
from .assistant import Assistant, default_checkpoint, world_example
from .dataset import build_from_captions, build_world_dataset, default_dataset
from .dispatch import registry_for
from .encode import record_features
from .errors import ModaVerseError
from .evaluate import answer, metrics_table, score_one
from .files import default_dataset_dir, default_run_dir
from .meta import format_meta, parse
from .model import ModaVerseLite, build_model, checkpoint_info
from .profiles import get_profile
from .records import check_dataset, read_records
from .roundtrip import roundtrip_eval, roundtrip_table
from .train import TrainConfig, align_train
from .tutorial import use_drive_cache
from .widgets import demo, generator_table, reply_table

__all__ = [
    # the world and its media
    "world", "media", "plots", "get_profile",
    # data
    "default_dataset_dir", "default_dataset", "build_world_dataset", "build_from_captions", "read_records",
    "check_dataset",
    # the model and its one training stage
    "record_features", "ModaVerseLite", "build_model", "checkpoint_info", "TrainConfig", "align_train",
    "default_run_dir", "use_drive_cache",
    # what it learned
    "answer", "score_one", "metrics_table",
    # the alignment families, compared (compare.run, compare.METHODS, compare.CompareConfig, compare.table)
    "compare",
    # the demo requests' world rules: edits, two media in, two outputs out (edits.edit, combine, outputs)
    "edits",
    # the paper's claim: one stage against NExT-GPT's three (claim.run, claim.ARMS, claim.latent_targets)
    "claim",
    # the meta-response, dispatch and the assistant
    "format_meta", "parse", "registry_for", "Assistant", "default_checkpoint", "world_example",
    "roundtrip_eval", "roundtrip_table", "reply_table", "generator_table", "demo",
    "ModaVerseError",
]

__version__ = "0.1.0"
