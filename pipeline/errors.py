"""Typed errors. Each message says what went wrong and what to do next."""


class CallqaError(Exception):
    """Base class of every error callqa raises on purpose."""


class ConfigError(CallqaError):
    """Bad options, paths or manifests: nothing can run."""


class RubricError(CallqaError):
    """The rubric or a pattern file is invalid: nothing can be scored."""


class ModelError(CallqaError):
    """A model cannot be found or loaded."""


class AudioError(CallqaError):
    """One recording cannot be decoded or holds no usable speech."""


class TranscriptError(CallqaError):
    """One transcript file cannot be parsed."""
