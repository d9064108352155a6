"""One small error hierarchy. Every message names the file or value at fault and, where there is one, the fix."""


class ModaVerseError(Exception):
    """Base class of every error modaverse_lite raises on purpose."""


class MediaError(ModaVerseError):
    """A media file or array cannot be used: missing, corrupt, empty, of an unknown kind or too large."""


class DatasetError(ModaVerseError):
    """An instruction dataset (JSONL + media folder) is malformed."""


class CheckpointError(ModaVerseError):
    """A checkpoint or model folder is missing, incomplete or does not match the configuration."""


class ProfileError(ModaVerseError):
    """An unknown profile name or an invalid profile setting."""


class GeneratorError(ModaVerseError):
    """A text-to-X generator is not registered, or cannot produce what a prompt asks for."""


class BusyError(ModaVerseError):
    """Another process is writing the same dataset, run or zoo folder (its lock file is named)."""


class TrainingError(ModaVerseError):
    """Training cannot go on: a non-finite loss, or an fp16 run whose every step overflows."""
