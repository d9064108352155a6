"""modaverse_lite — a tutorial reproduction of ModaVerse: any-to-any by I/O alignment in natural language.

One import for the whole road::

    import modaverse_lite as mv
    data = mv.default_dataset("tiny")                        # instruction records, targets are meta-responses
    run = mv.align_train(mv.TrainConfig(profile="tiny", out_dir="runs/align"))
    reply = mv.Assistant("runs/align")("Draw a red circle.")  # meta-response → generator → file
"""

from . import dataset, dispatch, encode, evaluate, media, meta, plots, profiles, tutorial, widgets, world, zoo
from .bench import bench_align
from .dataset import (
                      PAIRS,
                      SPLITS,
                      TEMPLATES,
                      CheckReport,
                      Record,
                      Target,
                      build_from_captions,
                      build_world_dataset,
                      check_dataset,
                      read_records,
                      write_records,
)
from .dispatch import (
                      DiffusersGenerator,
                      Dispatcher,
                      Generator,
                      Output,
                      Registry,
                      WorldRenderer,
                      bench_dispatch,
                      registry_for,
)
from .encode import AttributeProbes, Encoder, FeatureCache, linear_probe, load_encoder
from .encode import encode as encode_media
from .errors import CheckpointError, DatasetError, GeneratorError, MediaError, ModaVerseError, ProfileError
from .evaluate import summarise
from .media import load, load_audio, load_image, load_video, modality_of, save_audio, save_image, save_video
from .meta import MetaResponse, Segment, format_meta, format_segments, parse
from .model import ModaVerseLite, Projection
from .pipeline import Assistant, Reply, default_checkpoint, world_example
from .profiles import GPU, TINY, LoraSettings, Profile, TrainSettings, get_profile
from .roundtrip import format_roundtrip, roundtrip_eval, roundtrip_table
from .train import (
                      TrainConfig,
                      TrainResult,
                      align_train,
                      default_dataset,
                      default_run_dir,
                      load_checkpoint,
                      save_checkpoint,
)
from .tutorial import NOTEBOOKS, run_notebooks

__version__ = "0.1.0"
