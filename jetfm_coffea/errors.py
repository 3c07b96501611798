"""Domain exceptions: every error a user can cause names what went wrong and where."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InputFileError",
    "JetFMError",
    "MissingCollectionError",
    "NonFiniteLossError",
    "SchemaValidationError",
    "TokenConfigMismatchError",
    "TrainingError",
]


class JetFMError(Exception):
    """Base class of all errors raised by jetfm-coffea."""


class ConfigError(JetFMError, ValueError):
    """A configuration (tokens, augmentations, training, task) is invalid."""


class SchemaValidationError(JetFMError, ValueError):
    """A document does not validate against its declared JSON schema."""


class InputFileError(JetFMError, OSError):
    """An input file is missing, unreadable, truncated or not a ROOT file."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingCollectionError(JetFMError, KeyError):
    """A configured, non-optional collection is absent from an input file."""

    def __init__(self, collection: str, path: str | None = None, missing: list[str] | None = None):
        self.collection = collection
        self.path = path
        self.missing = missing or []
        where = f" in {path}" if path else ""
        branches = f" (missing branches: {', '.join(self.missing)})" if self.missing else ""
        super().__init__(f"collection {collection!r} not found{where}{branches}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class TrainingError(JetFMError, RuntimeError):
    """Training cannot start or continue (empty data, mismatched configs, bad checkpoint)."""


class TokenConfigMismatchError(TrainingError, ValueError):
    """The data's token configuration differs from the one the model was built for."""


class NonFiniteLossError(TrainingError, FloatingPointError):
    """The loss became NaN or infinite; a checkpoint was saved before raising."""

    def __init__(self, step: int, provenance: str, checkpoint: str | None = None):
        self.step = step
        self.provenance = provenance
        self.checkpoint = checkpoint
        saved = f"; checkpoint of the last good state saved at {checkpoint}" if checkpoint else ""
        super().__init__(f"non-finite loss at step {step} on batch {provenance}{saved}")
