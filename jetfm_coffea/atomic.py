"""Atomic file writes: the one way the package replaces a file.

A file is written under a temporary sibling name (``.<name>.tmp-<pid>-<token>``, in the
same folder, so the rename never crosses a file system), flushed to disk and renamed onto
its final name with :func:`os.replace`. A reader sees the old file or the new one, never
half of one; a crash leaves at most a hidden ``.tmp-`` file beside it.

>>> import json, tempfile
>>> from pathlib import Path
>>> path = Path(tempfile.mkdtemp()) / "summary.json"
>>> atomic_write_json(path, {"events": 3})
>>> json.loads(path.read_text())
{'events': 3}
>>> with atomic_path(path) as tmp:  # any writer (uproot, torch.save) fills ``tmp``
...     _ = tmp.write_text("{}")
>>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
('{}', ['summary.json'])

Shard *directories* are published differently (a Zarr group renamed into place, the old
one moved aside first): that is a different operation, owned by the shard writer
(``jetfm_coffea.shards.writer``) with the temporary names the shard format declares.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "commit",
    "temporary_sibling",
]

#: Marker in the name of every temporary sibling (``.<name>.tmp-<pid>-<token>``).
_TMP_MARKER = ".tmp-"


def temporary_sibling(path: str | os.PathLike[str]) -> Path:
    """A fresh hidden name beside ``path`` to write to before :func:`commit`."""
    path = Path(path)
    return path.with_name(f".{path.name}{_TMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def commit(tmp: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Rename the finished temporary file ``tmp`` onto ``path`` (atomic); returns ``path``."""
    os.replace(tmp, path)
    return Path(path)


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success it replaces ``path``.

    For writers that need a file name (``torch.save``, ``uproot.recreate``). If the
    block raises, the temporary file is removed and ``path`` is left as it was.
    """
    tmp = temporary_sibling(path)
    try:
        yield tmp
        commit(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (flushed and fsync-ed before the rename)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(
    path: str | os.PathLike[str], document: Any, *, indent: int = 1, **dumps: Any
) -> None:
    """Write ``document`` as JSON (with a final newline) to ``path`` atomically.

    ``dumps`` go to :func:`json.dumps` (``default=str``, ``sort_keys=True``, ...).
    """
    atomic_write_text(path, json.dumps(document, indent=indent, **dumps) + "\n")
