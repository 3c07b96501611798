"""Token features from padded object kinematics, one kernel for numpy and torch.

The same function serves the shard builder (numpy, after coffea read the events),
the training loader (torch, after on-the-fly augmentations) and score injection.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from jetfm_coffea.backend import stack_last, where

__all__ = ["compute_features", "energy"]


def energy(lib: ModuleType, pt: Any, eta: Any, mass: Any) -> Any:
    """E = sqrt((pT cosh(eta))^2 + m^2)."""
    p = pt * lib.cosh(eta)
    return lib.sqrt(p * p + mass * mass)


def compute_features(
    lib: ModuleType,
    names: list[str],
    pt: Any,
    eta: Any,
    phi: Any,
    mass: Any,
    charge: Any,
    btag: Any,
    type_id: Any,
    mask: Any,
    px: Any = None,
    py: Any = None,
    pz: Any = None,
) -> tuple[Any, Any, Any]:
    """Return ``(tokens[..., F], mask, n_nonfinite)`` for padded ``[..., T]`` inputs.

    With the Cartesian momentum ``px, py, pz`` of the same objects (what the fused
    augmentation path has at hand) the angular and energy features need no trig:
    sin/cos(phi) = py/pT, px/pT and log E = log(p^2 + m^2) / 2 (equal to the polar
    formulas to float64 rounding, tested). ``phi`` may then be None.

    Padding slots (``mask`` False) get all-zero features. A valid token whose features
    are not all finite is masked out and counted in ``n_nonfinite`` (per event), so
    a NaN can never reach the model silently.
    """
    pt_safe = where(lib, mask, pt, 1.0)
    mass_safe = where(lib, mask, mass, 0.0)
    eta_safe = where(lib, mask, eta, 0.0)
    columns = {
        "log_pt": lambda: lib.log(pt_safe),
        "eta": lambda: eta_safe,
        "sin_phi": lambda: lib.sin(phi),
        "cos_phi": lambda: lib.cos(phi),
        "log_e": lambda: lib.log(energy(lib, pt_safe, eta_safe, mass_safe)),
    }
    if px is not None:
        columns["sin_phi"] = lambda: py / pt_safe
        columns["cos_phi"] = lambda: px / pt_safe
        p2 = lambda: where(lib, mask, px * px + py * py + pz * pz, 1.0)  # noqa: E731
        columns["log_e"] = lambda: 0.5 * lib.log(p2() + mass_safe * mass_safe)
    columns |= {
        "log_m": lambda: lib.log1p(lib.abs(mass_safe)),
        "charge": lambda: charge * 1.0,
        "btag": lambda: btag * 1.0,
        "type_id": lambda: type_id * 1.0,
    }
    feats = stack_last(lib, [columns[name]() for name in names])
    finite = lib.isfinite(feats).all(-1)
    bad = mask & ~finite
    mask = mask & finite
    if lib.__name__ != "numpy" or not mask.all():  # all valid (numpy, flat): nothing to zero
        feats = where(lib, mask[..., None], feats, 0.0)
    n_bad = bad.sum(-1)
    return feats, mask, n_bad
