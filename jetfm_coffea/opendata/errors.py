"""Errors of the Open Data subsystem; all derive from :class:`jetfm_coffea.errors.JetFMError`."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from jetfm_coffea.errors import ConfigError, JetFMError

if TYPE_CHECKING:
    from jetfm_coffea.opendata.remote import FileReport

__all__ = [
    "FileListUnavailableError",
    "MissingCrossSectionError",
    "UnknownDatasetError",
    "UnknownLumiMaskError",
    "UnknownNameError",
    "UnreachableFilesError",
    "close_matches",
]


def close_matches(name: str, known: Iterable[str], n: int = 5) -> list[str]:
    """Known names that resemble ``name`` (case-insensitive difflib match, best first)."""
    known = list(known)
    by_lower = {k.lower(): k for k in known}
    hits = difflib.get_close_matches(name.lower(), list(by_lower), n=n, cutoff=0.6)
    # substrings are close matches too ("SingleMuon" -> every SingleMuon dataset)
    hits += [k.lower() for k in known if name.lower() in k.lower() and k.lower() not in hits]
    return [by_lower[h] for h in hits[:n]]


class UnknownNameError(JetFMError, KeyError):
    """A name is not in the catalogue; ``suggestions`` holds close matches."""

    kind = "name"
    fallback_hint = "`jetfm opendata list` shows what exists"

    def __init__(self, name: str, known: Iterable[str]):
        known = list(known)
        self.name = name
        self.suggestions = close_matches(name, known)
        if self.suggestions:
            hint = f"; did you mean {', '.join(repr(s) for s in self.suggestions)}?"
        else:
            hint = "; " + self.fallback_hint.format(known=", ".join(sorted(known)))
        super().__init__(f"unknown {self.kind} {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return str(self.args[0])


class UnknownDatasetError(UnknownNameError):
    """A dataset name is not in the Open Data catalogue."""

    kind = "Open Data dataset"


class UnknownLumiMaskError(UnknownNameError):
    """A golden JSON is neither shipped with the catalogue nor an existing file."""

    kind = "golden JSON"
    fallback_hint = "give a file path or one of the shipped golden JSONs: {known}"


class MissingCrossSectionError(ConfigError):
    """Simulation without a cross-section where one is required (e.g. to normalise)."""

    def __init__(self, names: Sequence[str]):
        self.names = list(names)
        super().__init__(
            f"no cross-section for simulated dataset(s) {', '.join(self.names)}: the catalogue "
            "has none from a source; pass one explicitly (xsec={name: pb} / --xsec NAME=PB) "
            "or do not require cross-sections"
        )


class FileListUnavailableError(JetFMError, LookupError):
    """The catalogue knows a dataset but lists none of its file URLs."""

    def __init__(self, name: str, record_ids: Sequence[int]):
        self.name = name
        self.record_ids = list(record_ids)
        recids = ", ".join(str(r) for r in self.record_ids)
        super().__init__(
            f"the catalogue lists no file URLs for {name!r} (record {recids}); a maintainer "
            "can add them online with opendata/maintenance/regenerate.py, or get them with "
            f"`cernopendata-client get-file-locations --recid {self.record_ids[0]}`"
        )


class UnreachableFilesError(JetFMError, OSError):
    """Files of a fileset could not be opened; ``failures`` reports each one."""

    def __init__(self, failures: Sequence[FileReport], total: int | None = None):
        self.failures = list(failures)
        of = f" of {total}" if total is not None else ""
        lines = "\n".join(f"  {f.url}: {f.error}" for f in self.failures)
        super().__init__(f"{len(self.failures)}{of} file(s) unreachable:\n{lines}")
