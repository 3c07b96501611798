"""Errors of score injection and model export (``ModelFileError`` lives in
:mod:`jetfm_coffea.errors`, beside the run directory's other errors)."""

from __future__ import annotations

from jetfm_coffea.errors import JetFMError, MissingCollectionError

__all__ = ["ScoreInputError", "ScoringServerError"]


class ScoreInputError(MissingCollectionError):
    """The events lack a collection the model's token configuration needs.

    The message names the model, the collection (and branches) and the file.
    """

    def __init__(self, model: str, err: MissingCollectionError):
        super().__init__(err.collection, err.path, err.missing)
        self.model = model
        self.args = (f"model {model} needs {err.args[0]}",)

    @classmethod
    def missing_branches(cls, model: str, path: str | None, missing: list[str]) -> ScoreInputError:
        """Every branch the events lack, in one error (``scorer.required_branches`` lists
        what to request)."""
        collections = sorted({b.split("_", 1)[0] for b in missing if "_" in b})
        err = MissingCollectionError(", ".join(collections) or "event ids", path, missing)
        out = cls(model, err)
        where = f" in {path}" if path else ""
        out.args = (
            f"model {model} needs branches missing{where}: {', '.join(missing)} "
            f"(collections {', '.join(collections) or '-'}); a skim must keep every branch "
            "of scorer.required_branches",
        )
        return out

    @classmethod
    def wrong_input(
        cls, model: str, path: str | None, fields: list[str], collections: list[str]
    ) -> ScoreInputError:
        """A collection (``events.Jet``) was passed instead of the event record."""
        out = cls(model, MissingCollectionError(", ".join(collections), path))
        out.args = (
            f"model {model} scores the event record (events), not one collection: got an "
            f"array of fields {', '.join(fields[:8])}{'...' if len(fields) > 8 else ''}; the "
            f"model reads the collections {', '.join(collections)} and the event ids of "
            "events as read (pass events, not events.Jet nor already-selected objects)",
        )
        return out


class ScoringServerError(JetFMError, ConnectionError):
    """A scoring server (Triton) is unreachable, fails, or serves another model.

    The message names the server URL and model (``triton+grpc://host:port/model``).
    """

    def __init__(self, server: str, reason: str):
        self.server = str(server)
        self.reason = reason
        super().__init__(f"{self.server}: {reason}")
