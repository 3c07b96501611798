"""Counter-based, per-event random numbers: same event -> same draws, however it is read.

Every random number is a pure function of integers::

    key(event)  = mix(seed, run, luminosityBlock, event, view, step)
    u(stream)   = mix(key(event), stream, slot)  ->  uniform in (0, 1)

where ``mix`` is the splitmix64 finaliser (Steele, Lea & Flood 2014; :func:`mix64`, the
package's one copy, also behind the fine-tuning splits) applied to ``uint64`` arrays with
numpy, so it is vectorised over events and objects (no Python loop per event) and
independent of how a file is chunked, of the executor and of the number of workers.
Draws are computed once with numpy (float64) and moved to the target backend (a torch
tensor's device and dtype), so numpy and torch views of the same event use bit-identical
random numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "StepRandom",
    "event_step_keys",
    "mix64",
    "step_keys",
    "uniform_from_bits",
    "view_keys",
]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
# Domain-separation constants so that (run, lumi, event, view, step) fields cannot alias.
_FIELD = np.array(
    [0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0, 0x082EFA98EC4E6C89,
     0x452821E638D01377, 0xBE5466CF34E90C6C, 0xC0AC29B7C97C50DD],
    dtype=np.uint64,
)  # fmt: skip


def _u64(x: np.ndarray | int) -> np.ndarray:
    """Integers as an (at least 1-d) uint64 array; negative ints wrap (two's complement)."""
    a = np.asarray(x)
    if a.dtype == np.uint64:
        return np.atleast_1d(a)
    return np.atleast_1d(a.astype(np.int64, copy=False)).view(np.uint64)


def mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser on a uint64 array (wrapping arithmetic, no warnings).

    In place on one fresh array plus one scratch buffer (9 passes, 2 allocations).
    """
    z = np.add(np.atleast_1d(np.asarray(x, dtype=np.uint64)), _GOLDEN)
    t = np.empty_like(z)
    for shift, mult in ((_S30, _M1), (_S27, _M2)):
        np.right_shift(z, shift, out=t)
        np.bitwise_xor(z, t, out=z)
        np.multiply(z, mult, out=z)
    np.right_shift(z, _S31, out=t)
    return np.bitwise_xor(z, t, out=z)


def _combine(h: np.ndarray, value: np.ndarray, field: int) -> np.ndarray:
    return mix64(h ^ mix64(value ^ _FIELD[field]))


def _combine_runs(h: np.ndarray, run: np.ndarray, lumi: np.ndarray) -> np.ndarray:
    """``_combine(_combine(h, run, 0), lumi, 1)`` for a scalar ``h``, hashing each run of
    consecutive equal (run, luminosityBlock) once (files hold few lumi blocks)."""
    run, lumi = _u64(run), _u64(lumi)
    n = len(run)
    if n == 0:
        return np.zeros(0, np.uint64)
    starts = np.flatnonzero((run[1:] != run[:-1]) | (lumi[1:] != lumi[:-1])) + 1
    starts = np.concatenate([[0], starts])
    if len(starts) * 4 > n:  # no long runs: hash every event
        return _combine(_combine(h, run, 0), lumi, 1)
    keys = _combine(_combine(h, run[starts], 0), lumi[starts], 1)
    return np.repeat(keys, np.diff(np.append(starts, n)))


def view_keys(
    seed: int, run: np.ndarray, luminosityBlock: np.ndarray, event: np.ndarray, view: int
) -> np.ndarray:
    """Per-event keys of one view ``[N]``; :func:`step_keys` derives each step's keys."""
    h = mix64(_u64(int(seed) & 0xFFFFFFFFFFFFFFFF))
    h = _combine(_combine_runs(h, run, luminosityBlock), _u64(event), 2)
    return _combine(h, _u64(int(view)), 3)


def step_keys(view_key: np.ndarray, step: int) -> np.ndarray:
    """Keys of pipeline step ``step`` from the :func:`view_keys` (one hash pass)."""
    return _combine(view_key, _u64(int(step)), 4)


def event_step_keys(
    seed: int,
    run: np.ndarray,
    luminosityBlock: np.ndarray,
    event: np.ndarray,
    view: int,
    step: int,
) -> np.ndarray:
    """Per-event uint64 keys ``[N]`` from the global seed, the event ids, the view and step.

    Built as::

        h = mix(seed); h = combine(h, run); ...; key = combine(h, step)
    """
    return step_keys(view_keys(seed, run, luminosityBlock, event, view), step)


def uniform_from_bits(bits: np.ndarray) -> np.ndarray:
    """Top 53 bits -> float64 uniform in the open interval (0, 1)."""
    return ((bits >> _S11).astype(np.float64) + 0.5) * (1.0 / 9007199254740992.0)


@dataclass(frozen=True)
class StepRandom:
    """Random numbers of one pipeline step for a batch of events.

    ``keys`` are the per-event keys ``[N]``; ``n_slots`` the padded number of objects.
    Each call names a ``stream`` (a small integer chosen by the augmentation) so that
    different quantities of one step are independent. Per-object draws have shape
    ``[N, T]`` and depend on the slot index, per-event draws have shape ``[N]``.
    """

    keys: np.ndarray
    n_slots: int

    def _object_bits(self, stream: int, event_index: np.ndarray, slot: np.ndarray) -> np.ndarray:
        k = _combine(self.keys, _u64(int(stream)), 5)
        # mix64(slot ^ F6) takes n_slots values: hash them once, then look them up
        n = max(self.n_slots, int(slot.max()) + 1 if slot.size else 0)
        table = mix64(np.arange(n, dtype=np.uint64) ^ _FIELD[6])
        return mix64(k.take(event_index) ^ table.take(slot))

    def _bits(self, stream: int, per_object: bool) -> np.ndarray:
        if not per_object:
            return mix64(_combine(self.keys, _u64(int(stream)), 5))
        n = len(self.keys)
        return self._object_bits(stream, np.arange(n)[:, None], np.arange(self.n_slots)[None, :])

    def uniform(self, stream: int, per_object: bool = False) -> np.ndarray:
        """Uniform draws in (0, 1), float64, ``[N]`` or ``[N, T]``."""
        return uniform_from_bits(self._bits(stream, per_object))

    def uniform_at(self, stream: int, event_index: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Per-object uniforms for objects given by (event index, slot): equal to
        ``uniform(stream, per_object=True)[event_index, slot]`` without the padding."""
        return uniform_from_bits(self._object_bits(stream, event_index, slot))

    def normal(self, stream: int, per_object: bool = False) -> np.ndarray:
        """Standard normal draws (Box-Muller from two independent uniform streams)."""
        return _box_muller(
            self.uniform(2 * stream + 1001, per_object), self.uniform(2 * stream + 1002, per_object)
        )

    def normal_at(self, stream: int, event_index: np.ndarray, slot: np.ndarray) -> np.ndarray:
        """Per-object normals at (event index, slot), equal to the padded ``normal``."""
        return _box_muller(
            self.uniform_at(2 * stream + 1001, event_index, slot),
            self.uniform_at(2 * stream + 1002, event_index, slot),
        )


def _box_muller(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
