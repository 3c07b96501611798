"""Write NanoAOD-format ``Events`` TTrees with uproot (``mktree``/``extend``).

``file[name] = ...`` makes uproot 5.7 write an RNTuple; NanoAOD readers expect a TTree,
so the tree is created explicitly.  Collections given as jagged record arrays become a
counter ``n<Name>`` (int32) and branches ``<Name>_<field>``, exactly the NanoAOD layout.

The file is written under a temporary name in the same folder and renamed into place by
:meth:`NanoAODWriter.close`; an interrupted run leaves only a ``*.tmp`` file, never a
complete-looking ``.root`` file. A writer given a ``uuid`` stamps it on the file (ROOT's
file identity, which shard stores name their shards by); without one uproot draws a
time-based one.
"""

from __future__ import annotations

import os
import uuid as uuid_module
from pathlib import Path
from typing import Any

import awkward as ak
import numpy as np
import uproot

from jetfm_coffea.atomic import commit, temporary_sibling

__all__ = ["NanoAODWriter"]


class NanoAODWriter:
    """Buffering TTree writer; use as a context manager (``close`` renames into place).

    Parameters
    ----------
    path:
        Final path of the ROOT file.
    flush_events:
        Number of events buffered before a basket is written (bigger baskets read faster).
    uuid:
        The file's ROOT UUID (None: a fresh time-based one).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        flush_events: int = 5000,
        uuid: uuid_module.UUID | None = None,
    ):
        self.path = Path(path)
        self.uuid = uuid
        self.tmp_path = temporary_sibling(self.path)
        self.flush_events = int(flush_events)
        self._buffer: list[dict[str, Any]] = []
        self._buffered = 0
        self._file: Any = None
        self._tree: Any = None
        self.n_events = 0

    def __enter__(self) -> NanoAODWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, branches: dict[str, Any]) -> None:
        """Buffer one batch of events (flat arrays and jagged record collections)."""
        n = len(next(iter(branches.values())))
        self._buffer.append(branches)
        self._buffered += n
        if self._buffered >= self.flush_events:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        if len(self._buffer) == 1:
            data = self._buffer[0]
        else:
            data = {}
            for key, first in self._buffer[0].items():
                parts = [b[key] for b in self._buffer]
                if isinstance(first, np.ndarray):
                    data[key] = np.concatenate(parts)
                else:
                    data[key] = ak.concatenate(parts)
        if self._tree is None:
            options = {} if self.uuid is None else {"uuid_function": lambda: self.uuid}
            self._file = uproot.recreate(self.tmp_path, **options)
            types = {
                k: (v.dtype if isinstance(v, np.ndarray) else v.type.content)
                for k, v in data.items()
            }
            self._tree = self._file.mktree("Events", types, title="Events")
        self._tree.extend(data)
        self.n_events += self._buffered
        self._buffer, self._buffered = [], 0

    def close(self) -> Path:
        """Write what is buffered, close the file and rename it to its final path."""
        self._flush()
        if self._file is None:
            raise RuntimeError(f"no events were written to {self.path}")
        self._file.close()
        commit(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Close and delete the temporary file (after an error or an interrupt)."""
        try:
            if self._file is not None:
                self._file.close()
        finally:
            self.tmp_path.unlink(missing_ok=True)
