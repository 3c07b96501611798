"""Re-simulation (RS3L): one hard process, showered, hadronised and reconstructed K times.

Pythia's own mechanism is used: the hard process of every event of a chunk is
generated once (ISR, FSR, MPI and hadronisation off) and written as Les Houches events
by ``LHEF3FromPythia8`` from the *process* record; K shower instances then read that
file back (``Beams:frameType = 4``), each with its own seed and, optionally, its own
shower/hadronisation settings (``--resim-variations``).  The hard 2 -> n scattering
(incoming partons and their direct products) is therefore bit-identical in the K
copies; everything after it (ISR, FSR, MPI, resonance recoils, hadronisation, detector)
differs.

Every written event carries :data:`RESIM_GROUP` (the hard event it came from: equal
for the K siblings, ``seed * 2**32 + hard event number``, so unique across the runs of
a sample with different seeds; :func:`resim_group_id`) and :data:`RESIM_COPY`
(0..K-1).  All copies of a group are written to the same file, next to each other.

The variations file is YAML: a list of setting mappings under ``copies``; copy ``k``
uses entry ``k % len(copies)`` (an empty mapping keeps Pythia's defaults)::

    copies:
      - {}
      - {"TimeShower:alphaSvalue": 0.1265}
      - {"StringZ:aLund": 0.8, "MultipartonInteractions:pT0Ref": 2.5}
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field

from jetfm_coffea._optional import import_optional
from jetfm_coffea.config_base import HashedConfig, load_config
from jetfm_coffea.errors import ConfigError, JetFMError

__all__ = [
    "RESIM_COPY",
    "RESIM_GROUP",
    "ResimVariations",
    "align_to_hard",
    "check_pythia_settings",
    "copy_seed",
    "copy_settings",
    "hard_level_settings",
    "load_resim_variations",
    "resim_group_id",
    "shower_settings",
    "validate_resim",
    "write_hard_events",
]

RESIM_GROUP = "resim_group"
"""Events-tree branch: id of the hard event the sibling copies share (uint64, >= 1)."""

RESIM_COPY = "resim_copy"
"""Events-tree branch: copy index 0..K-1 of a re-simulated event (int32)."""

#: Settings that switch the generation of a hard-process-only record.
_HARD_ONLY = (
    "PartonLevel:ISR = off",
    "PartonLevel:FSR = off",
    "PartonLevel:MPI = off",
    "HadronLevel:all = off",
)

#: Relative tolerance on the momentum fractions when matching a shower copy to its
#: hard event (the Les Houches file keeps 8 significant digits).
_X_RTOL = 1e-6

SettingValue = bool | int | float | str


class ResimVariations(HashedConfig):
    """Per-copy Pythia settings of a re-simulation (copy ``k`` uses ``copies[k % n]``)."""

    model_config = ConfigDict(extra="forbid")

    copies: list[dict[str, SettingValue]] = Field(default_factory=list)


def _setting_line(key: str, value: SettingValue) -> str:
    if isinstance(value, bool):
        value = "on" if value else "off"
    return f"{key} = {value}"


def check_pythia_settings(lines: Sequence[str], source: str) -> None:
    """Feed ``lines`` to a probe Pythia; the first it rejects raises :class:`ConfigError`
    naming ``source`` and carrying Pythia's own message."""
    pythia8mc = import_optional("pythia8mc")
    probe = pythia8mc.Pythia("", False)
    probe.readString("Print:quiet = on")
    for line in lines:
        accepted, message = _read_string_capturing(probe, line)
        if not accepted:
            detail = " ".join(message.split()) or "no message"
            raise ConfigError(f"{source}: Pythia rejected {line!r}: {detail}")


def _read_string_capturing(pythia: Any, line: str) -> tuple[bool, str]:
    """``pythia.readString(line)`` with what Pythia prints on stdout captured."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            os.dup2(sink.fileno(), 1)
            accepted = bool(pythia.readString(line))
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        message = sink.read().decode(errors="replace")
    return accepted, message


def load_resim_variations(path: str | os.PathLike[str]) -> list[tuple[str, ...]]:
    """The per-copy setting lines of the variations file at ``path`` (each line checked
    by Pythia: an unknown setting raises :class:`ConfigError` with the file and key)."""
    config = load_config(ResimVariations, Path(path), what=f"resim variations file {path}")
    if not config.copies:
        raise ConfigError(f"resim variations file {path}: 'copies' lists no setting mappings")
    out = []
    for i, copy in enumerate(config.copies):
        lines = tuple(_setting_line(k, v) for k, v in copy.items())
        for key, line in zip(copy, lines, strict=True):
            try:
                check_pythia_settings([line], f"resim variations file {path}, copies[{i}]")
            except ConfigError as err:
                raise ConfigError(f"{err} (key {key!r})") from None
        out.append(lines)
    return out


def validate_resim(
    resim: int, variations: str | os.PathLike[str] | None, seed: int = 0
) -> list[tuple[str, ...]]:
    """Check ``--resim K`` (K >= 2) and the seed, and load the variations file (empty
    list: none)."""
    if isinstance(seed, (int, np.integer)) and seed > MAX_RESIM_SEED:
        raise ConfigError(f"--resim needs a seed <= {MAX_RESIM_SEED}, got {seed}")
    if isinstance(resim, bool) or not isinstance(resim, (int, np.integer)) or resim < 2:
        raise ConfigError(
            f"--resim needs K >= 2 re-simulated copies of each hard event, got {resim!r}"
        )
    return load_resim_variations(variations) if variations is not None else []


#: Largest seed of a re-simulation run (the group id keeps the seed in its high bits).
MAX_RESIM_SEED = 2**31 - 1


def resim_group_id(seed: int, hard_event: np.ndarray | int) -> np.ndarray:
    """``resim_group`` of the (1-based) hard event numbers of a run with ``seed``."""
    return np.int64(seed) * np.int64(2**32) + np.asarray(hard_event, np.int64)


def copy_settings(k: int, variations: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    """The variation settings of copy ``k`` (``()`` without a variations file)."""
    return tuple(variations[k % len(variations)]) if variations else ()


def copy_seed(seed: int, chunk: int, k: int) -> int:
    """Pythia seed (1..900000000) of shower copy ``k`` of chunk ``chunk``."""
    ss = np.random.SeedSequence(int(seed), spawn_key=(int(chunk), 1 + int(k)))
    return int(ss.generate_state(1, dtype=np.uint32)[0]) % 900_000_000 + 1


def hard_level_settings(settings: Sequence[str]) -> list[str]:
    """``settings`` of a full generation turned into hard-process-only generation."""
    return [*settings, *_HARD_ONLY]


def shower_settings(
    lhef: str | os.PathLike[str],
    seed: int,
    extra: Sequence[str] = (),
    variation: Sequence[str] = (),
) -> list[str]:
    """Settings of one shower copy reading the hard events of ``lhef``.

    The process switches are left out on purpose: with them on, Pythia would mix its
    internal processes into the Les Houches input.
    """
    return [
        "Beams:frameType = 4",
        f"Beams:LHEF = {os.fspath(lhef)}",
        "Print:quiet = on",
        "Next:numberCount = 0",
        "Random:setSeed = on",
        f"Random:seed = {int(seed)}",
        *extra,
        *variation,
    ]


def write_hard_events(
    pythia: Any, n_events: int, path: Path, max_failures: int = 100
) -> np.ndarray:
    """Generate ``n_events`` hard-process records with ``pythia`` (made with
    :func:`hard_level_settings`) into the Les Houches file ``path``.

    Returns the momentum fractions ``(n_events, 2)`` (x1, x2) of each written event, by
    which :func:`align_to_hard` recognises the events in the shower copies.
    """
    pythia8mc = import_optional("pythia8mc")
    writer = pythia8mc.LHEF3FromPythia8(pythia, 8, True)
    writer.setEventPtr(pythia.process)  # the hard process, not the (remnant-filled) event
    if not writer.openLHEF(os.fspath(path)):
        raise JetFMError(f"cannot open the Les Houches file {path}")
    writer.setInit()
    x = np.empty((n_events, 2))
    failures = 0
    for i in range(n_events):
        while not pythia.next():
            failures += 1
            if failures > max_failures:
                raise JetFMError("Pythia keeps failing to generate hard-process events")
        info = pythia.infoPython()
        x[i] = info.x1(), info.x2()
        writer.setEvent()
    writer.closeLHEF(True)
    return x


def align_to_hard(x_copy: np.ndarray, x_hard: np.ndarray, start: int) -> np.ndarray:
    """Index into ``x_hard`` of every event of a shower batch whose hard events begin at
    ``start``; a hard event Pythia skipped (a failed shower) is stepped over.

    ``x_copy``: ``(n, 2)`` momentum fractions of the batch in reading order.  Raises
    :class:`JetFMError` when an event matches no later hard event.
    """
    n = len(x_copy)
    fast = x_hard[start : start + n]
    if len(fast) == n and np.allclose(x_copy, fast, rtol=_X_RTOL, atol=0.0):
        return np.arange(start, start + n)
    out = np.empty(n, dtype=np.int64)
    j = start
    for i in range(n):
        while j < len(x_hard) and not np.allclose(x_copy[i], x_hard[j], rtol=_X_RTOL, atol=0.0):
            j += 1
        if j == len(x_hard):
            raise JetFMError(
                f"re-simulated event {i} of a batch (x1, x2 = {x_copy[i].tolist()}) matches no "
                "hard-process event of its Les Houches file"
            )
        out[i] = j
        j += 1
    return out
