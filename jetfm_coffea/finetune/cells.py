"""Study cells: one trained model of a label-efficiency study, keyed by what determines it.

A cell is one (encoder, mode, label count, seed, hyper-parameters) run on a task's test
set.  Its :class:`CellKey` holds everything its result depends on: the task config
hash, the test-set hash, the encoder hash (``None`` for scratch and the BDTs, which do
not depend on the encoder: they are computed once, whatever encoders a study compares),
the mode, label count, seed, hyper-parameters and the version of its trainer
(:func:`code_version`: :data:`TRAINER_VERSION` for the encoder modes,
:data:`REFERENCE_VERSION` for the BDTs; declared, bumped with any change of that
trainer's numbers and pinned by a test, so that a refactor keeps a long study's finished
cells valid and a change of one trainer leaves the other's cells standing).

A finished cell is two files, written atomically, the JSON last (its presence is what
"finished" means)::

    <store>/<task>/<encoder or none>/<mode>/<label>/s<seed>_<hyper>.npz   test scores
    <store>/<task>/<encoder or none>/<mode>/<label>/s<seed>_<hyper>.json  key + result

The test scores are stored as 8-bit rank quantiles of the cell's test events
(:func:`quantise`: the order of the scores, which is all an AUC reads, in 256 levels;
the cell's JSON keeps the AUC of the full-precision scores beside the one of the stored
levels, which every interval is computed from).

The path is named by the plan (readable, stable); the JSON's ``key`` is compared with
the current key before any training: a cell computed by other code or on other data is
an error (:class:`StaleCellError`), never silently reused or overwritten.  With
``commit=True`` each finished cell's JSON is committed to git as it completes and its
scores when the study keeps them (:meth:`CellStore.commit_scores`: the chosen point of
a tuning search; the scores of the other tuning cells are dropped before they reach the
history), so a study that runs for days survives the end of a session.  A cell whose
JSON is there but whose score file is not (a fresh clone of a study stopped mid-search)
is trained again: the same key gives the same numbers.
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
from jetfm_coffea.finetune.config import REFERENCE_MODES

__all__ = [
    "CELL_FORMAT",
    "REFERENCE_VERSION",
    "SCORE_LEVELS",
    "TRAINER_VERSION",
    "CellKey",
    "CellStore",
    "StaleCellError",
    "code_version",
    "git_commit",
    "quantise",
]

#: Version of the cell file layout (2: 8-bit rank-quantile scores, ``score_q``).
CELL_FORMAT = 2
#: The version of the encoder modes' numbers (linear probe, fine-tuning, scratch), part of
#: their cells' keys.  Bump it with any change that alters such a cell's result (losses,
#: scores, data draws, early stopping: the fine-tuning loop, the model); a refactor that
#: keeps every number keeps it.  ``tests/finetune/test_trainer_version.py`` pins fixed
#: cells' results under this version: a change that moves them fails there until the
#: version is bumped.
TRAINER_VERSION = "2026.12.07"
#: The same for the BDT references (``finetune.reference``; the data draws they share
#: with the encoder modes move both). 2026.12.08: a fit still improving at
#: ``reference.max_iter`` goes on (the cap doubled, up to 16x) instead of stopping there.
REFERENCE_VERSION = "2026.12.08"
#: Levels of a stored score (uint8 rank quantiles).
SCORE_LEVELS = 256


def code_version(mode: str) -> str:
    """The version of the trainer of ``mode`` as stored in its cells' keys."""
    return REFERENCE_VERSION if mode in REFERENCE_MODES else TRAINER_VERSION


def quantise(scores: np.ndarray) -> np.ndarray:
    """``scores`` as uint8 rank quantiles: level ``floor(256 * (rank - 1/2) / n)`` of the
    mid-rank, so the order is kept (equal scores get equal levels, a higher score never
    a lower level) and each level holds about ``n / 256`` events."""
    from scipy.stats import rankdata

    s = np.asarray(scores, np.float64)
    if s.size == 0:
        return np.zeros(0, np.uint8)
    mid = rankdata(s, method="average") - 0.5
    return np.minimum(np.floor(mid * SCORE_LEVELS / s.size), SCORE_LEVELS - 1).astype(np.uint8)


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
            return None  # stopped before its scores were kept: train it again
        return cell

    def scores(self, key: CellKey) -> np.ndarray:
        """The stored test scores of a finished cell (one per test event: its rank-quantile
        level, or the float score of a format-1 cell)."""
        with np.load(self.paths(key)[1]) as f:
            return f["score_q"] if "score_q" in f.files else f["score"]

    def save(self, key: CellKey, result: dict[str, Any], scores: np.ndarray | None) -> Path:
        """Write a finished cell atomically (scores first, as :func:`quantise` levels;
        JSON last); commit its JSON if asked (its scores: :meth:`commit_scores`)."""
        path, npz = self.paths(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if scores is not None:
            buf = io.BytesIO()
            np.savez_compressed(buf, score_q=quantise(scores))
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
            git_commit([path], f"label-efficiency cell {key.relpath()} ({key.digest()})")
        return path

    def commit_scores(self, keys: list[CellKey], message: str) -> None:
        """Commit the score files of ``keys`` (the cells a study keeps), if committing."""
        if self.commit and keys:
            git_commit([self.paths(k)[1] for k in keys], message)

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
        disagrees with ``context`` (task config hash, test-set hash), with the current
        version of its mode's trainer (:func:`code_version`) or was trained on another
        encoder than ``encoders[name]`` (hash)."""
        for path, cell in self.cells(task):
            key = cell.get("key", {})
            want = {**{k: key.get(k) for k in key}, **context}
            want["code_version"] = code_version(str(key.get("mode")))
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
    """``git add -A`` the ``files`` and commit only them, in the repository holding them
    (a file that is neither there nor tracked is left out, and files already committed
    as they are make no commit: nothing to record)."""
    repo = files[0].parent
    top = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--show-toplevel"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if top.returncode != 0:
        raise ConfigError(f"cannot commit {files[0]}: not inside a git repository")
    root = top.stdout.strip()
    names = [str(Path(f).absolute()) for f in files]  # the study's cwd need not be the top
    tracked = subprocess.run(
        ["git", "-C", root, "ls-files", "--", *names], capture_output=True, text=True, check=True
    ).stdout.split()
    tracked_abs = {str(Path(root, t).absolute()) for t in tracked}
    names = [n for n in names if Path(n).exists() or n in tracked_abs]
    if not names:
        return
    subprocess.run(["git", "-C", root, "add", "-A", "--", *names], check=True)
    staged = subprocess.run(["git", "-C", root, "diff", "--cached", "--quiet", "--", *names],
                            check=False)  # fmt: skip
    if staged.returncode == 0:  # already recorded (a resumed study re-commits a group)
        return
    subprocess.run(
        ["git", "-C", root, "commit", "-q", "-m", message, "--", *names],
        check=True, capture_output=True,
    )  # fmt: skip
