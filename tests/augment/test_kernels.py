"""Property tests of the kernels: exact Lorentz transformations, numpy/torch/awkward alike.

Tolerances: invariants are compared as m^2 relative to the summed energy squared,
``|dm^2| <= tol * (sum E)^2`` with tol = 1e-10 in float64 and 2e-4 in float32 (the
cancellation in E^2 - p^2 makes relative mass errors of light, boosted objects large
in float32 without any physics error); angles and rapidities absolutely, 1e-9 (float64)
and 2e-3 (float32).
"""

from __future__ import annotations

import math

import awkward as ak
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from jetfm_coffea.augment import kernels as K

SETTINGS = settings(max_examples=25, deadline=None)
TOL = {np.float64: (1e-10, 1e-9), np.float32: (2e-4, 2e-3)}  # (invariants, angles)
DTYPES = pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])


def _events(seed: int, n: int = 64, t: int = 5, dtype=np.float64):
    rng = np.random.default_rng(seed)
    pt = rng.uniform(1.0, 300.0, (n, t))
    eta = rng.uniform(-3.0, 3.0, (n, t))
    phi = rng.uniform(-math.pi, math.pi, (n, t))
    mass = np.where(rng.random((n, t)) < 0.3, 0.0, rng.uniform(0.0, 50.0, (n, t)))
    return [a.astype(dtype) for a in (pt, eta, phi, mass)]


def _m2(lib, pt, eta, phi, mass, axis=None):
    px, py, pz, e = (np.asarray(v, np.float64) for v in K.to_cartesian(lib, pt, eta, phi, mass))
    if axis is not None:
        px, py, pz, e = (v.sum(axis) for v in (px, py, pz, e))
    return e * e - px * px - py * py - pz * pz, e * e


def _assert_invariants(before, after, dtype):
    tol = TOL[dtype][0]
    for sl, axis in [(np.s_[:, :], None), (np.s_[:, :2], -1), (np.s_[:, :], -1)]:
        m0, e0 = _m2(np, *(v[sl] for v in before), axis=axis)
        m1, _ = _m2(np, *(v[sl] for v in after), axis=axis)
        assert np.all(np.abs(m1 - m0) <= tol * e0 + 1e-300), "invariant mass changed"


def _dphi(a, b):
    return (a - b + math.pi) % (2 * math.pi) - math.pi


@DTYPES
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), angle=st.floats(-math.pi, math.pi))
def test_rotate_phi_preserves_pt_dphi_and_masses(dtype, seed, angle):
    pt, eta, phi, mass = _events(seed, dtype=dtype)
    new = K.rotate_phi(np, phi, dtype(angle))
    assert new.dtype == dtype
    assert np.all((new >= -math.pi) & (new <= math.pi))
    d0 = _dphi(phi[:, :, None], phi[:, None, :])
    d1 = _dphi(new[:, :, None], new[:, None, :])
    assert np.abs(_dphi(d1, d0)).max() < TOL[dtype][1]
    _assert_invariants((pt, eta, phi, mass), (pt, eta, new, mass), dtype)


@DTYPES
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), dy=st.floats(-2.0, 2.0))
def test_boost_z_preserves_pt_dphi_rapidity_differences_and_masses(dtype, seed, dy):
    pt, eta, phi, mass = _events(seed, dtype=dtype)
    new_eta = K.boost_z(np, pt, eta, mass, dtype(dy))
    y0 = K.rapidity(np, pt, eta, mass).astype(np.float64)
    y1 = K.rapidity(np, pt, new_eta, mass).astype(np.float64)
    assert np.abs(y1 - y0 - dy).max() < TOL[dtype][1] * 3
    dy0 = y0[:, :, None] - y0[:, None, :]
    dy1 = y1[:, :, None] - y1[:, None, :]
    assert np.abs(dy1 - dy0).max() < TOL[dtype][1] * 3
    _assert_invariants((pt, eta, phi, mass), (pt, new_eta, phi, mass), dtype)
    # massless objects: eta shifts exactly by dy; massive ones by less (|eta| > |y|)
    massless = mass == 0
    assert np.abs(new_eta[massless] - eta[massless] - dy).max() < TOL[dtype][1] * 3


@DTYPES
@SETTINGS
@given(
    seed=st.integers(0, 2**32 - 1),
    beta=st.floats(0.0, 0.5),
    angle=st.floats(-math.pi, math.pi),
)
def test_boost_transverse_preserves_masses_and_inverts(dtype, seed, beta, angle):
    pt, eta, phi, mass = _events(seed, dtype=dtype)
    bx, by = dtype(beta * math.cos(angle)), dtype(beta * math.sin(angle))
    pt1, eta1, phi1 = K.boost_transverse(np, pt, eta, phi, mass, bx, by)
    _assert_invariants((pt, eta, phi, mass), (pt1, eta1, phi1, mass), dtype)
    # pz is unchanged by a transverse boost
    pz0, pz1 = pt * np.sinh(eta), pt1 * np.sinh(eta1)
    assert np.allclose(pz1, pz0, rtol=TOL[dtype][1], atol=TOL[dtype][1])
    # beta then -beta (collinear boosts) is the identity
    pt2, eta2, phi2 = K.boost_transverse(np, pt1, eta1, phi1, mass, -bx, -by)
    assert np.allclose(pt2, pt, rtol=TOL[dtype][1])
    assert np.abs(eta2 - eta).max() < TOL[dtype][1]
    assert np.abs(_dphi(phi2, phi)).max() < TOL[dtype][1]


@DTYPES
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), dy=st.floats(-2.0, 2.0))
def test_boost_z_then_minus_is_identity(dtype, seed, dy):
    pt, eta, _, mass = _events(seed, dtype=dtype)
    back = K.boost_z(np, pt, K.boost_z(np, pt, eta, mass, dtype(dy)), mass, dtype(-dy))
    assert np.abs(back - eta).max() < TOL[dtype][1] * 3


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), b=st.floats(-0.6, 0.6))
def test_general_boost_inverse_and_invariant(seed, b):
    pt, eta, phi, mass = _events(seed)
    p4 = K.to_cartesian(np, pt, eta, phi, mass)
    beta = (0.5 * b, -0.3 * b, 0.7 * b)
    there = K.boost_p4(np, *p4, *beta)
    back = K.boost_p4(np, *there, *(-x for x in beta))
    for a, c in zip(back, p4, strict=True):
        assert np.allclose(a, c, rtol=1e-10, atol=1e-9)
    m0 = p4[3] ** 2 - p4[0] ** 2 - p4[1] ** 2 - p4[2] ** 2
    m1 = there[3] ** 2 - there[0] ** 2 - there[1] ** 2 - there[2] ** 2
    assert np.all(np.abs(m1 - m0) <= 1e-10 * there[3] ** 2)


@DTYPES
@SETTINGS
@given(seed=st.integers(0, 2**32 - 1))
def test_reflect_eta_is_an_involution(dtype, seed):
    pt, eta, phi, mass = _events(seed, dtype=dtype)
    once = K.reflect_eta(np, eta)
    assert np.array_equal(once, -eta)
    assert np.array_equal(K.reflect_eta(np, once), eta)
    assert np.array_equal(K.reflect_eta(np, eta, 1.0), eta)
    _assert_invariants((pt, eta, phi, mass), (pt, once, phi, mass), dtype)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), preserve=st.booleans())
def test_smear_unit_factor_is_identity(seed, preserve):
    pt, eta, _, mass = _events(seed)
    pt1, m1 = K.smear_energy(np, pt, eta, mass, 1.0, preserve)
    assert np.allclose(pt1, pt, rtol=1e-12) and np.array_equal(m1, mass)


def test_smear_mass_preserving_scales_energy():
    pt, eta, _, mass = _events(1)
    f = 1.07
    pt1, m1 = K.smear_energy(np, pt, eta, mass, f, True)
    assert np.array_equal(m1, mass)
    assert np.allclose(K.energy(np, pt1, eta, m1), f * K.energy(np, pt, eta, mass), rtol=1e-12)
    pt2, m2 = K.smear_energy(np, pt, eta, mass, f, False)
    assert np.allclose(pt2, f * pt) and np.allclose(m2, f * mass)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_same_kernels_on_torch_and_numpy(dtype):
    pt, eta, phi, mass = _events(7)
    t = [torch.as_tensor(a, dtype=dtype) for a in (pt, eta, phi, mass)]
    dy, bx, by = 0.4, 0.12, -0.07
    tol = 1e-12 if dtype == torch.float64 else 2e-4
    pairs = [
        (K.rotate_phi(np, phi, 0.3), K.rotate_phi(torch, t[2], 0.3)),
        (K.boost_z(np, pt, eta, mass, dy), K.boost_z(torch, t[0], t[1], t[3], dy)),
        *zip(
            K.boost_transverse(np, pt, eta, phi, mass, bx, by),
            K.boost_transverse(torch, *t, bx, by),
            strict=True,
        ),
        *zip(
            K.smear_energy(np, pt, eta, mass, 0.95),
            K.smear_energy(torch, t[0], t[1], t[3], 0.95),
            strict=True,
        ),
    ]
    for a, b in pairs:
        assert b.dtype == dtype
        assert np.allclose(b.numpy(), a, rtol=tol, atol=tol)


def test_kernels_run_on_jagged_awkward_arrays():
    pt, eta, phi, mass = _events(3, n=6, t=4)
    counts = np.array([0, 1, 4, 2, 3, 4])
    keep = np.arange(4)[None, :] < counts[:, None]
    jag = [ak.unflatten(a[keep], counts) for a in (pt, eta, phi, mass)]
    dy = np.linspace(-1, 1, 6)  # one value per event, broadcast over its objects
    new = K.boost_z(np, jag[0], jag[1], jag[3], dy)
    assert isinstance(new, ak.Array) and ak.all(ak.num(new) == counts)
    ref = K.boost_z(np, pt, eta, mass, dy[:, None])[keep]
    assert np.allclose(ak.flatten(new).to_numpy(), ref)
    rot = K.rotate_phi(np, jag[2], dy)
    assert np.allclose(ak.flatten(rot).to_numpy(), K.rotate_phi(np, phi, dy[:, None])[keep])
    bt = K.boost_transverse(np, *jag, 0.1 * dy, 0.05)
    ref_bt = K.boost_transverse(np, pt, eta, phi, mass, 0.1 * dy[:, None], 0.05)
    for a, b in zip(bt, ref_bt, strict=True):
        assert np.allclose(ak.flatten(a).to_numpy(), b[keep])


@pytest.mark.parametrize("lib", ["numpy", "torch"])
def test_fast_cartesian_conversions_match_vector_reference(lib):
    """polar_to_p4 / p4_to_polar (no sinh, arcsinh, libm arctan2) == vector's conversions
    to float64 rounding (absolute 1e-12 for the angles, relative 1e-12 for momenta)."""
    rng = np.random.default_rng(3)
    n = 20000
    pt, eta = rng.exponential(20, n) + 0.1, rng.normal(0, 2.5, n)
    phi, mass = rng.uniform(-np.pi, np.pi, n), rng.exponential(2, n)
    mod = np if lib == "numpy" else torch
    conv = (lambda x: x) if lib == "numpy" else torch.from_numpy
    ref = K.to_cartesian(np, pt, eta, phi, mass)
    fast = K.polar_to_p4(mod, *(conv(x) for x in (pt, eta, phi, mass)))
    scale = pt * np.cosh(eta) + mass
    for a, b in zip(ref, fast, strict=True):
        assert np.abs((np.asarray(b) - a) / scale).max() < 1e-12
    pt2, eta2, phi2 = (np.asarray(x) for x in K.p4_to_polar(mod, *fast[:3]))
    assert np.abs(pt2 / pt - 1).max() < 1e-12 and np.abs(eta2 - eta).max() < 1e-12
    assert np.abs(phi2 - phi).max() < 1e-12
    # the corners of atan2: axes and both sides of the negative x axis
    x = np.array([1.0, -1.0, 0.0, 0.0, -1.0, -1.0])
    y = np.array([0.0, 0.0, 1.0, -1.0, 1e-300, -1e-300])
    assert np.allclose(np.asarray(K.atan2(mod, conv(y), conv(x))), np.arctan2(y, x), atol=1e-15)
