"""Domain exceptions: every error a user can cause names what went wrong and where."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "EXIT_ERROR",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "EXIT_USAGE",
    "ConfigError",
    "InputFileError",
    "JetFMError",
    "LegacyStoreError",
    "MissingBranchesError",
    "MissingCollectionError",
    "ModelFileError",
    "ModifiedWeightsError",
    "NoInputProcessedError",
    "NonFiniteLossError",
    "SchemaValidationError",
    "SchemaVersionError",
    "ShardChecksumError",
    "ShardError",
    "ShardExistsError",
    "StoreManifestError",
    "TokenConfigMismatchError",
    "TrainingError",
    "UnknownNameError",
    "close_matches",
]


#: Exit statuses of every ``jetfm`` command (docs/components/tokens.md): all asked-for inputs
#: processed (or skipping allowed by ``--skip-bad-files``)...
EXIT_OK = 0
#: ... an error: nothing usable was processed, or a domain error stopped the command ...
EXIT_ERROR = 1
#: ... a usage error (click: unknown option, bad value) ...
EXIT_USAGE = 2
#: ... a partial result: output written, but some input files were skipped (listed, with
#: their reasons, on stderr and in ``--json``) and ``--skip-bad-files`` was not given.
EXIT_PARTIAL = 3


class JetFMError(Exception):
    """Base class of all errors raised by jetfm-coffea."""


class ConfigError(JetFMError, ValueError):
    """A configuration (tokens, augmentations, training, task) is invalid."""


def close_matches(name: str, known: Iterable[str], n: int = 5) -> list[str]:
    """Known names that resemble ``name`` (case-insensitive difflib match, best first)."""
    known = list(known)
    by_lower = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
    # substrings are close matches too ("SingleMuon" -> every SingleMuon dataset)
    hits += [k.lower() for k in known if name.lower() in k.lower() and k.lower() not in hits]
    return [by_lower[h] for h in hits[:n]]


class UnknownNameError(ConfigError, KeyError):
    """A name that no registry (:class:`jetfm_coffea.registry.Registry`) or catalogue
    knows: ``name``, ``kind`` and ``suggestions`` (close matches among the known ones).

    The message names the kind and the name, then the close matches if any, else every
    known name (subclasses of long catalogues say where to look instead), then ``hint``.
    """

    kind = "name"

    def __init__(self, name: str, known: Iterable[str], kind: str | None = None, hint: str = ""):
        known = list(known)
        self.name = name
        if kind is not None:
            self.kind = kind
        self.suggestions = close_matches(name, known)
        super().__init__(f"unknown {self.kind} {name!r}; {self.advice(known)}{hint}")

    def advice(self, known: list[str]) -> str:
        """What to try instead: the close matches, else every known name."""
        if self.suggestions:
            return f"did you mean {', '.join(repr(s) for s in self.suggestions)}? registered: " + (
                ", ".join(known)
            )
        return f"registered: {', '.join(known) or 'none'}"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class SchemaValidationError(JetFMError, ValueError):
    """A document does not validate against its declared JSON schema."""


class InputFileError(JetFMError, OSError):
    """An input file is missing, unreadable, truncated or not a ROOT file."""

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MissingBranchesError(InputFileError):
    """An input file lacks branches of configured, non-optional collections (or the event ids).

    ``missing`` maps each collection (``"event ids"`` for run/luminosityBlock/event) to
    its missing branches; the message names the file and every one of them.
    """

    def __init__(self, path: str, missing: dict[str, list[str]], hint: str = ""):
        self.missing = {k: list(v) for k, v in missing.items()}
        listing = "; ".join(f"{name} ({', '.join(b)})" for name, b in self.missing.items())
        super().__init__(path, f"missing collections: {listing}{hint}")


class NoInputProcessedError(InputFileError):
    """A command asked to process inputs processed none of them (every one unusable).

    ``skipped`` lists ``(file, reason)`` of every input left out.
    """

    def __init__(self, what: str, skipped: list[tuple[str, str]]):
        self.skipped = list(skipped)
        listing = "".join(f"\n  {f}: {r}" for f, r in self.skipped)
        reason = (
            f"no input could be processed ({len(self.skipped)} file(s) skipped){listing}"
            if self.skipped
            else "no input files (the fileset lists none)"
        )
        super().__init__(what, reason)


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


class ModifiedWeightsError(JetFMError, OSError):
    """A weights file's SHA-256 differs from the one its run directory recorded when it was written.

    ``path`` is the weights file, ``recorded`` the hash written beside it (in ``record``:
    ``run.json`` or an export's ``manifest.json``), ``actual`` the hash of its bytes now.
    """

    def __init__(self, path: str, recorded: str, actual: str, record: str):
        self.path = str(path)
        self.recorded = recorded
        self.actual = actual
        self.record = str(record)
        super().__init__(
            f"{self.path}: SHA-256 {actual} does not match {recorded} recorded in {self.record} "
            "when the weights were written: they were modified since; refusing to load them "
            "(--allow-modified-weights / allow_modified_weights=True overrides, and is recorded)"
        )


class ModelFileError(JetFMError, OSError):
    """A model directory (run or export) is incomplete, corrupt, tampered with, or holds pickles.

    Raised before any byte of an untrusted file is deserialised by anything other
    than safetensors or JSON/YAML; ``path`` names the file or directory.
    """

    def __init__(self, path: str, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


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


class ShardError(JetFMError):
    """A pretraining shard or shard store is unusable; ``shard`` names the shard (or store)."""

    def __init__(self, shard: str, reason: str):
        self.shard = str(shard)
        self.reason = reason
        super().__init__(f"{self.shard}: {reason}")


class SchemaVersionError(ShardError):
    """A shard or store declares a schema version this package does not read."""

    def __init__(self, shard: str, found: str | None, expected: str):
        self.found = found
        self.expected = expected
        super().__init__(
            shard,
            f"declares schema version {found!r}, but this jetfm-coffea reads {expected!r} "
            "(rebuild the store with this version, or use a matching jetfm-coffea)",
        )


class LegacyStoreError(SchemaVersionError):
    """A shard store (or shard) of an older schema: it must be migrated before it is read."""

    def __init__(self, store: str, found: str, expected: str):
        ShardError.__init__(
            self,
            store,
            f"is a shard store of schema {found}; this jetfm-coffea reads {expected}: "
            f"run 'jetfm shards migrate {store} --out NEW' to convert it (same events, verified)",
        )
        self.found = found
        self.expected = expected


class ShardChecksumError(ShardError):
    """A shard's content does not match the checksum recorded when it was written."""


class ShardExistsError(ShardError, FileExistsError):
    """A complete shard already exists at the target path (and overwriting was not asked for)."""


class StoreManifestError(ShardError):
    """The store manifest is missing, invalid, or does not match the shards on disk."""
