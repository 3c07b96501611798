"""Lower bounds for the cost of one augmented view: the least arithmetic it needs,
compiled (numba) into one scalar pass over the objects, or as vectorised float32 numpy
passes (SIMD exp/log/sin/cos). Benchmark reference only.

Not the implementation (that is :mod:`jetfm_coffea.augment`, one backend-agnostic
code path for numpy and torch); it answers "how fast could any implementation be on
this CPU?". Per object it does what every view must do and nothing else: polar ->
Cartesian (exp, cos, sin, sqrt), a rotation, a longitudinal and a transverse boost and
a reflection with per-event parameters, three counter-based random draws (splitmix64,
one Box-Muller normal for the energy smearing, one uniform for the dropout), the
smearing, Cartesian -> polar (sqrt, log, atan2) and four token features (log pT,
log E, sin/cos phi). No masking, no acceptance, no padding, no bookkeeping.
"""

from __future__ import annotations

import math
import time

import numpy as np


def floor_seconds(
    pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray, event: np.ndarray,
    slot: np.ndarray, n_events: int, repeats: int = 5,
) -> float:  # fmt: skip
    """Best-of-``repeats`` seconds of the fused floor kernel on flat objects (float64)."""
    import numba

    @numba.njit(inline="always")
    def mix(z):
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    @numba.njit(inline="always")
    def uniform(bits):
        return ((bits >> np.uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)

    @numba.njit
    def kernel(pt, eta, phi, mass, ev, slot, keys, par, out):
        for i in range(pt.size):
            e_ = ev[i]
            c, s, ch, sh, bx, by, g, a, sign = par[e_]
            ex = math.exp(eta[i])
            inv = 1.0 / ex
            pz = pt[i] * 0.5 * (ex - inv)
            p = pt[i] * 0.5 * (ex + inv)
            px, py = pt[i] * math.cos(phi[i]), pt[i] * math.sin(phi[i])
            e = math.sqrt(p * p + mass[i] * mass[i])
            px, py = c * px - s * py, s * px + c * py
            pz, e = ch * pz + sh * e, sh * pz + ch * e
            bp = bx * px + by * py
            k = a * bp + g * e
            px, py, e = px + k * bx, py + k * by, g * (e + bp)
            pz *= sign
            k0 = keys[e_] ^ mix(np.uint64(slot[i]))
            z = math.sqrt(-2.0 * math.log(uniform(mix(k0 ^ np.uint64(1)))))
            z *= math.cos(2.0 * math.pi * uniform(mix(k0 ^ np.uint64(2))))
            f = 1.0 + 0.01 * z
            px, py, pz, e = px * f, py * f, pz * f, e * f
            pt2 = px * px + py * py
            ptn = math.sqrt(pt2)
            out[0, i] = math.log(ptn)
            out[1, i] = math.copysign(math.log((math.sqrt(pt2 + pz * pz) + abs(pz)) / ptn), pz)
            ph = math.atan2(py, px)
            out[2, i], out[3, i] = math.sin(ph), math.cos(ph)
            out[4, i] = math.log(e)
            out[5, i] = uniform(mix(k0 ^ np.uint64(3))) < 0.1

    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, n_events).astype(np.uint64)
    par = rng.uniform(0.1, 0.9, (n_events, 9))
    out = np.empty((6, len(pt)))
    args = (pt, eta, phi, mass, event, slot, keys, par, out)
    kernel(*args)  # compile
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        kernel(*args)
        best = min(best, time.process_time() - start)
    return best


def numpy_float32_seconds(
    pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, mass: np.ndarray, event: np.ndarray,
    slot: np.ndarray, n_events: int, repeats: int = 5,
) -> float:  # fmt: skip
    """Best-of-``repeats`` seconds of the same arithmetic as :func:`floor_seconds`, as
    whole-array float32 numpy passes (the per-event parameters gathered once per object;
    the uint64 hashing stays 64-bit; sin/cos phi as px/pT, py/pT)."""
    f32 = np.float32
    pt, eta, phi, mass = (np.asarray(a, f32) for a in (pt, eta, phi, mass))
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, n_events).astype(np.uint64)
    par = rng.uniform(0.1, 0.9, (9, n_events)).astype(f32)
    slot_hash = np.asarray(slot, np.uint64)

    def mix(z: np.ndarray) -> np.ndarray:
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))

    def uniform(bits: np.ndarray) -> np.ndarray:
        return ((bits >> np.uint64(40)).astype(f32) + f32(0.5)) * f32(1.0 / (1 << 24))

    def view() -> tuple[np.ndarray, ...]:
        c, s, ch, sh, bx, by, g, a, sign = (p.take(event) for p in par)
        ex = np.exp(eta)
        inv = f32(1) / ex
        pz, p = pt * f32(0.5) * (ex - inv), pt * f32(0.5) * (ex + inv)
        px, py = pt * np.cos(phi), pt * np.sin(phi)
        e = np.sqrt(p * p + mass * mass)
        px, py = c * px - s * py, s * px + c * py
        pz, e = ch * pz + sh * e, sh * pz + ch * e
        bp = bx * px + by * py
        k = a * bp + g * e
        px, py, e = px + k * bx, py + k * by, g * (e + bp)
        pz = pz * sign
        k0 = keys.take(event) ^ mix(slot_hash)
        z = np.sqrt(f32(-2) * np.log(uniform(mix(k0 ^ np.uint64(1)))))
        z *= np.cos(f32(2 * math.pi) * uniform(mix(k0 ^ np.uint64(2))))
        factor = f32(1) + f32(0.01) * z
        px, py, pz, e = px * factor, py * factor, pz * factor, e * factor
        pt2 = px * px + py * py
        ptn = np.sqrt(pt2)
        eta2 = np.copysign(np.log((np.sqrt(pt2 + pz * pz) + np.abs(pz)) / ptn), pz)
        drop = uniform(mix(k0 ^ np.uint64(3))) < f32(0.1)
        return np.log(ptn), eta2, px / ptn, py / ptn, np.log(e), drop

    view()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        view()
        best = min(best, time.process_time() - start)
    return best
