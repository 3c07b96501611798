"""Errors of score injection and model export."""

from __future__ import annotations

from jetfm_coffea.errors import JetFMError, MissingCollectionError

__all__ = ["ModelFileError", "ScoreInputError", "ScoringServerError"]


class ModelFileError(JetFMError, OSError):
    """A model directory is incomplete, corrupt, tampered with, or holds pickles.

    Raised before any byte of an untrusted file is deserialised by anything other
    than safetensors or JSON/YAML.
    """

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ScoreInputError(MissingCollectionError):
    """The events lack a collection the model's token configuration needs.

    The message names the model, the collection (and branches) and the file.
    """

    def __init__(self, model: str, err: MissingCollectionError):
        super().__init__(err.collection, err.path, err.missing)
        self.model = model
        self.args = (f"model {model} needs {err.args[0]}",)


class ScoringServerError(JetFMError, ConnectionError):
    """A scoring server (Triton) is unreachable, fails, or serves another model.

    The message names the server URL and model (``triton+grpc://host:port/model``).
    """

    def __init__(self, server: str, reason: str):
        self.server = str(server)
        self.reason = reason
        super().__init__(f"{self.server}: {reason}")
