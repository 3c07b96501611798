"""Study cells: one trained model of a label-efficiency study, keyed by what determines it.

A cell is one (encoder, mode, label count, seed, hyper-parameters) run on a task's test
set.  Its :class:`CellKey` holds everything its result depends on: the task config
hash, the test-set hash, the encoder hash (``None`` for scratch and the BDTs, which do
not depend on the encoder: they are computed once, whatever encoders a study compares),
the mode, label count, seed, hyper-parameters and the trainer's code version (a hash
of the source files that train and score a cell, :data:`CODE_FILES`).

A finished cell is two files, written atomically, the JSON last (its presence is what
"finished" means)::

    <store>/<task>/<encoder or none>/<mode>/<label>/s<seed>_<hyper>.npz   test scores
    <store>/<task>/<encoder or none>/<mode>/<label>/s<seed>_<hyper>.json  key + result

The path is named by the plan (readable, stable); the JSON's ``key`` is compared with
the current key before any training: a cell computed by other code or on other data is
an error (:class:`StaleCellError`), never silently reused or overwritten.  With
``commit=True`` each finished cell is committed to git as it completes, so a study that
runs for days survives the end of a session.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jetfm_coffea.atomic import atomic_write_bytes, atomic_write_text
from jetfm_coffea.errors import ConfigError

__all__ = [
    "CELL_FORMAT",
    "CODE_FILES",
    "CellKey",
    "CellStore",
    "StaleCellError",
    "code_version",
    "git_commit",
]

#: Version of the cell file layout.
CELL_FORMAT = 1
#: Source files (relative to the package) that decide a cell's result.
CODE_FILES: tuple[str, ...] = (
    "finetune/trainer.py",
    "finetune/loop.py",
    "finetune/reference.py",
    "finetune/data.py",
    "finetune/encode.py",
    "finetune/metrics.py",
    "finetune/task_types/classification.py",
    "model/model.py",
)


def code_version() -> str:
    """SHA-256 (16 hex) of the trainer's source files (:data:`CODE_FILES`)."""
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256()
    for rel in CODE_FILES:
        h.update(rel.encode() + b"\0" + (root / rel).read_bytes() + b"\0")
    return h.hexdigest()[:16]


class StaleCellError(ConfigError):
    """A stored cell's key differs from the key the current code and data give it."""


def _slug(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class CellKey:
    """What determines a cell's result."""

    task: str
    task_config_hash: str
    test_set_hash: str
    encoder: str | None  # ssl, random, no-signal, ...; None: does not use one
    encoder_hash: str | None
    mode: str
    labels: str  # the grid entry: "1%", "all", "250"
    n_train: int
    n_val: int
    seed: int
    hyper: dict[str, Any] = field(default_factory=dict)
    code_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly (``hyper`` keys sorted)."""
        d = asdict(self)
        d["hyper"] = {k: self.hyper[k] for k in sorted(self.hyper)}
        return d

    def digest(self) -> str:
        """SHA-256 (16 hex) of the canonical key."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def relpath(self) -> Path:
        """``<task>/<encoder>/<mode>/<labels>/s<seed>_<hyper>`` (no suffix)."""
        hyper = "_".join(f"{k}{_slug(v)}" for k, v in sorted(self.hyper.items())) or "default"
        label = self.labels.replace("%", "pct")
        return Path(self.task, self.encoder or "none", self.mode, label, f"s{self.seed}_{hyper}")


class CellStore:
    """Finished cells under ``root`` (see the module docstring)."""

    def __init__(self, root: str | Path, *, commit: bool = False):
        self.root = Path(root)
        self.commit = commit

    def paths(self, key: CellKey) -> tuple[Path, Path]:
        base = self.root / key.relpath()  # names hold dots (lr0.001): append, not replace
        return base.parent / f"{base.name}.json", base.parent / f"{base.name}.npz"

    def load(self, key: CellKey) -> dict[str, Any] | None:
        """The finished cell of ``key``, or None; :class:`StaleCellError` if the cell at
        its path was computed under another key (other code, data or encoder)."""
        path, scores = self.paths(key)
        if not path.is_file():
            return None
        cell = json.loads(path.read_text())
        stored = cell.get("key", {})
        want = key.as_dict()
        if stored != want:
            raise StaleCellError(_mismatch(path, stored, want))
        if cell.get("scores") is not None and not scores.is_file():
            raise StaleCellError(f"{path}: its score file {scores.name} is missing")
        return cell

    def scores(self, key: CellKey) -> np.ndarray:
        """The stored test scores of a finished cell (signal score per test event)."""
        with np.load(self.paths(key)[1]) as f:
            return f["score"]

    def save(self, key: CellKey, result: dict[str, Any], scores: np.ndarray | None) -> Path:
        """Write a finished cell atomically (scores first, JSON last); commit if asked."""
        path, npz = self.paths(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if scores is not None:
            buf = io.BytesIO()
            np.savez_compressed(buf, score=np.asarray(scores, np.float32))
            atomic_write_bytes(npz, buf.getvalue())
        cell = {
            "format": CELL_FORMAT,
            "key": key.as_dict(),
            "digest": key.digest(),
            "scores": npz.name if scores is not None else None,
            **result,
        }
        atomic_write_text(path, json.dumps(cell, indent=1, default=_json_default) + "\n")
        if self.commit:
            files = [path] + ([npz] if scores is not None else [])
            git_commit(files, f"label-efficiency cell {key.relpath()} ({key.digest()})")
        return path

    def drop_scores(self, key: CellKey, reason: str) -> None:
        """Remove a finished cell's score file (a tuning cell that was not chosen); its JSON
        keeps every number and says why."""
        path, npz = self.paths(key)
        cell = json.loads(path.read_text())
        if cell.get("scores") is None:
            return
        cell["scores"], cell["scores_dropped"] = None, reason
        atomic_write_text(path, json.dumps(cell, indent=1, default=_json_default) + "\n")
        npz.unlink(missing_ok=True)
        if self.commit:
            git_commit([path, npz], f"label-efficiency cell {key.relpath()}: {reason}")

    def cells(self, task: str) -> Iterator[tuple[Path, dict[str, Any]]]:
        """Every finished cell of ``task`` (path, content)."""
        for path in sorted((self.root / task).rglob("*.json")):
            if path.name != "testset.json":
                yield path, json.loads(path.read_text())

    def check(self, task: str, context: dict[str, Any], encoders: dict[str, str | None]) -> None:
        """Raise :class:`StaleCellError` (before any training) if a stored cell of ``task``
        disagrees with ``context`` (task config hash, test-set hash, code version) or was
        trained on another encoder than ``encoders[name]`` (hash)."""
        for path, cell in self.cells(task):
            key = cell.get("key", {})
            want = {**{k: key.get(k) for k in key}, **context}
            name = key.get("encoder")
            if name is not None and name in encoders:
                want["encoder_hash"] = encoders[name]
            if key != want:
                raise StaleCellError(_mismatch(path, key, want))


def _mismatch(path: Path, stored: dict[str, Any], want: dict[str, Any]) -> str:
    fields = sorted(k for k in set(stored) | set(want) if stored.get(k) != want.get(k))
    diff = "; ".join(f"{k}: stored {stored.get(k)!r}, now {want.get(k)!r}" for k in fields)
    return (
        f"{path}: this cell was computed under another key ({diff}); move the task's cell "
        "folder away (or delete the cell) to recompute it with the current code and data"
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def git_commit(files: list[Path], message: str) -> None:
    """``git add -A`` the ``files`` and commit only them, in the repository holding them."""
    repo = files[0].parent
    top = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if top.returncode != 0:
        raise ConfigError(f"cannot commit {files[0]}: not inside a git repository")
    names = [str(Path(f).absolute()) for f in files]  # the study's cwd need not be the top
    subprocess.run(["git", "-C", top.stdout.strip(), "add", "-A", "--", *names], check=True)
    subprocess.run(
        ["git", "-C", top.stdout.strip(), "commit", "-q", "-m", message, "--", *names],
        check=True, capture_output=True,
    )  # fmt: skip
