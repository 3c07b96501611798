"""Errors of the Open Data subsystem; all derive from :class:`jetfm_coffea.errors.JetFMError`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from jetfm_coffea.errors import ConfigError, JetFMError, UnknownNameError

if TYPE_CHECKING:
    from jetfm_coffea.opendata.remote import FileReport

__all__ = [
    "FileListUnavailableError",
    "MissingCrossSectionError",
    "UnknownDatasetError",
    "UnknownLumiMaskError",
    "UnreachableFilesError",
]


class _CatalogueNameError(UnknownNameError):
    """A name not in the catalogue (long lists: the close matches, else where to look)."""

    fallback_hint = "`jetfm opendata list` shows what exists"

    def advice(self, known: list[str]) -> str:
        if self.suggestions:
            return f"did you mean {', '.join(repr(s) for s in self.suggestions)}?"
        return self.fallback_hint.format(known=", ".join(sorted(known)))


class UnknownDatasetError(_CatalogueNameError):
    """A dataset name is not in the Open Data catalogue."""

    kind = "Open Data dataset"


class UnknownLumiMaskError(_CatalogueNameError):
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
