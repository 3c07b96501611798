"""The built-in augmentations, registered by name with their parameter models (like any
other augmentation); each calls the kernels once.

Every augmentation has a polar implementation (the reference, on ``pt, eta, phi``) and
a Cartesian one (on ``px, py, pz, e``) that the pipeline runs by default, so that
consecutive steps share one conversion. Both draw the same random numbers from the
same streams; per-event parameters (cos/sin of the angle, cosh/sinh of the rapidity,
gamma) are computed once per event in float64 numpy and then broadcast.

Random streams (the ``stream`` argument of the context's draws) are fixed per
augmentation so that a pipeline's draws never change when code is reorganised;
stream 0 is reserved for the pipeline's per-event ``apply_probability``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from jetfm_coffea.augment import kernels as K
from jetfm_coffea.augment.config import (
    BoostTransverse,
    BoostZ,
    DropObjects,
    MaskObjects,
    ReflectEta,
    RotatePhi,
    SmearEnergy,
)
from jetfm_coffea.augment.registry import State, StepContext, register
from jetfm_coffea.backend import where

__all__: list[str] = []


@register("rotate_phi", params=RotatePhi)
def _rotate_phi(spec: RotatePhi, ctx: StepContext, state: State) -> State:
    """phi -> phi + alpha for every object and MET, alpha uniform in [-max_angle, max_angle]."""
    angle = (2.0 * ctx.uniform(1) - 1.0) * spec.max_angle
    return {**state, "phi": K.rotate_phi(ctx.lib, state["phi"], angle)}


@register("rotate_phi", cartesian=True, polar=False)
def _rotate_phi_xy(spec: RotatePhi, ctx: StepContext, state: State) -> State:
    angle = (2.0 * ctx.rand.uniform(1) - 1.0) * spec.max_angle
    px, py = K.rotate_xy(
        ctx.lib, state["px"], state["py"], ctx.per_event(np.cos(angle)),
        ctx.per_event(np.sin(angle)),
    )  # fmt: skip
    return {**state, "px": px, "py": py}


@register("boost_z", params=BoostZ)
def _boost_z(spec: BoostZ, ctx: StepContext, state: State) -> State:
    """Rapidity shift dy uniform in [-max_rapidity, max_rapidity]; MET unchanged."""
    dy = (2.0 * ctx.uniform(1) - 1.0) * spec.max_rapidity
    eta = K.boost_z(ctx.lib, state["pt"], state["eta"], state["mass"], dy)
    return {**state, "eta": where(ctx.lib, ctx.is_met, state["eta"], eta)}


@register("boost_z", cartesian=True, polar=False)
def _boost_z_xy(spec: BoostZ, ctx: StepContext, state: State) -> State:
    dy = (2.0 * ctx.rand.uniform(1) - 1.0) * spec.max_rapidity
    ch = where(ctx.lib, ctx.is_met, 1.0, ctx.per_event(np.cosh(dy)))  # MET: identity
    sh = where(ctx.lib, ctx.is_met, 0.0, ctx.per_event(np.sinh(dy)))
    pz, e = K.boost_longitudinal(ctx.lib, state["pz"], state["e"], ch, sh)
    return {**state, "pz": pz, "e": e}


@register("boost_transverse", params=BoostTransverse)
def _boost_transverse(spec: BoostTransverse, ctx: StepContext, state: State) -> State:
    """|beta| uniform in [0, max_beta], direction uniform; MET as a massless pz=0 vector."""
    beta = spec.max_beta * ctx.rand.uniform(1)
    angle = 2.0 * math.pi * ctx.rand.uniform(2)
    bx = ctx.asarray(ctx.to_objects(beta * np.cos(angle)))
    by = ctx.asarray(ctx.to_objects(beta * np.sin(angle)))
    pt, eta, phi = K.boost_transverse(
        ctx.lib, state["pt"], state["eta"], state["phi"], state["mass"], bx, by
    )
    return {**state, "pt": pt, "eta": where(ctx.lib, ctx.is_met, 0.0, eta), "phi": phi}


@register("boost_transverse", cartesian=True, polar=False)
def _boost_transverse_xy(spec: BoostTransverse, ctx: StepContext, state: State) -> State:
    beta = spec.max_beta * ctx.rand.uniform(1)
    angle = 2.0 * math.pi * ctx.rand.uniform(2)
    gamma = (1.0 - beta * beta) ** -0.5
    px, py, e = K.boost_xy(
        ctx.lib, state["px"], state["py"], state["e"], ctx.per_event(beta * np.cos(angle)),
        ctx.per_event(beta * np.sin(angle)), ctx.per_event(gamma),
        ctx.per_event(gamma * gamma / (gamma + 1.0)),
    )  # fmt: skip
    return {**state, "px": px, "py": py, "e": e, "pz": where(ctx.lib, ctx.is_met, 0.0, state["pz"])}


@register("reflect_eta", params=ReflectEta)
def _reflect_eta(spec: ReflectEta, ctx: StepContext, state: State) -> State:
    """eta -> -eta for a fraction ``probability`` of the events."""
    sign = np.where(ctx.rand.uniform(1) < spec.probability, -1.0, 1.0)
    return {**state, "eta": K.reflect_eta(ctx.lib, state["eta"], ctx.asarray(ctx.to_objects(sign)))}


@register("reflect_eta", cartesian=True, polar=False)
def _reflect_eta_xy(spec: ReflectEta, ctx: StepContext, state: State) -> State:
    sign = np.where(ctx.rand.uniform(1) < spec.probability, -1.0, 1.0)
    return {**state, "pz": K.reflect_eta(ctx.lib, state["pz"], ctx.per_event(sign))}


def _smear_factor(spec: SmearEnergy, ctx: StepContext, state: State) -> tuple[Any, Any] | None:
    """(per-object energy factor, smeared objects) or None when no width is set."""
    lib = ctx.lib
    widths = [(ctx.type_id(name), w) for name, w in spec.widths.items()]
    widths = [(t, w) for t, w in widths if t is not None and (w.scale or w.resolution)]
    if not widths:
        return None
    z_obj = ctx.normal(2, per_object=True)
    # per object: scale_k z_event,k + resolution_k z_object for its type k; one gather
    # per quantity instead of one pass per type (column K: no width, all zero)
    k = len(widths)
    column = np.full(max(t for t, _ in widths) + 2, k, np.int64)
    column[[t for t, _ in widths]] = np.arange(k)
    type_id = ctx.integers(state["type_id"])
    type_id = type_id.clip(0, len(column) - 1)
    col = ctx.lookup(column, type_id)
    z_event = np.zeros((len(ctx.rand.keys), k + 1))
    for j, (tid, _) in enumerate(widths):
        z_event[:, j] = ctx.rand.normal(16 + tid)
    scale = np.array([w.scale for _, w in widths] + [0.0])
    resolution = np.array([w.resolution for _, w in widths] + [0.0])
    shift = ctx.lookup(scale, col) * ctx.per_event_at(z_event, col)
    shift = shift + ctx.lookup(resolution, col) * z_obj
    smear = state["mask"] & ~ctx.is_met
    return where(lib, smear, K._clip_min(lib, 1.0 + shift, 1e-3), 1.0), smear


@register("smear_energy", params=SmearEnergy)
def _smear_energy(spec: SmearEnergy, ctx: StepContext, state: State) -> State:
    """E -> E (1 + scale z_event,type + resolution z_object) per object type."""
    lib = ctx.lib
    drawn = _smear_factor(spec, ctx, state)
    if drawn is None:
        return state
    factor, smear = drawn
    pt, mass = K.smear_energy(
        lib, state["pt"], state["eta"], state["mass"], factor, spec.preserve_mass
    )
    out = {**state, "pt": pt, "mass": mass}
    if spec.propagate_met:
        out = _propagate_met(ctx, state, out, smear)
    return out


@register("smear_energy", cartesian=True, polar=False)
def _smear_energy_xy(spec: SmearEnergy, ctx: StepContext, state: State) -> State:
    """Cartesian smearing: E' = max(f E, m) and |p'| = sqrt(E'^2 - m^2) along p (kept
    tiny but non-zero when E' = m, so the direction survives), or p4 and m scaled by f."""
    lib = ctx.lib
    drawn = _smear_factor(spec, ctx, state)
    if drawn is None:
        return state
    factor, smear = drawn
    px, py, pz, e, mass = (state[k] for k in ("px", "py", "pz", "e", "mass"))
    if spec.preserve_mass:
        e1 = K._clip_min(lib, factor * e, 0.0)
        p2 = px * px + py * py + pz * pz
        scale = lib.sqrt(K._clip_min(lib, (e1 * e1 - mass * mass) / p2, 1e-24))
        e1 = lib.sqrt(scale * scale * p2 + mass * mass)
        out = {**state, "px": px * scale, "py": py * scale, "pz": pz * scale, "e": e1}
    else:
        out = {**state, "px": px * factor, "py": py * factor, "pz": pz * factor}
        out.update(e=e * factor, mass=mass * factor)
    if spec.propagate_met:  # type-1 MET: minus the transverse-momentum change
        met = ctx.is_met & state["mask"]
        sums = []
        for k in ("px", "py"):
            delta = where(lib, met, state[k], 0.0) - where(lib, smear, out[k] - state[k], 0.0)
            sums.append(ctx.to_objects(ctx.event_sum(delta)))
        mx, my = sums
        out["px"] = where(lib, met, mx, out["px"])
        out["py"] = where(lib, met, my, out["py"])
        out["e"] = where(lib, met, lib.sqrt(mx * mx + my * my + pz * pz + mass * mass), out["e"])
    return out


def _propagate_met(ctx: StepContext, before: State, after: State, changed: Any) -> State:
    """MET -= sum over changed objects of their pT change (the type-1 MET convention)."""
    lib = ctx.lib
    cos, sin = lib.cos(before["phi"]), lib.sin(before["phi"])
    met = ctx.is_met & before["mask"]
    # MET pT minus the objects' pT change, zero elsewhere (where(), not a product, so
    # that invalid slots can never leak into the sums)
    delta = where(lib, met, before["pt"], 0.0) - where(
        lib, changed, after["pt"] - before["pt"], 0.0
    )
    mx = ctx.event_sum(where(lib, met | changed, delta * cos, 0.0))
    my = ctx.event_sum(where(lib, met | changed, delta * sin, 0.0))
    pt, _, phi = K.from_cartesian(lib, mx, my, lib.zeros_like(mx))
    return {
        **after,
        "pt": where(lib, met, ctx.to_objects(pt), after["pt"]),
        "phi": where(lib, met, ctx.to_objects(phi), after["phi"]),
    }


def _choose(probability: float, include_met: bool, ctx: StepContext, state: State) -> Any:
    """Objects to remove: each with ``probability``, but never every candidate of an event.

    When every candidate of an event is drawn, the one with the largest draw survives.
    """
    u = ctx.uniform(1, per_object=True)
    cand = state["mask"] if include_met else state["mask"] & ~ctx.is_met
    drop = cand & (u < probability)
    if ctx.hit is not None:  # apply_probability: only events where the step applies
        drop = drop & ctx.hit
    n_cand, n_drop = ctx.event_sum(cand * 1.0), ctx.event_sum(drop * 1.0)
    all_gone = ctx.to_objects((n_drop == n_cand) & (n_cand > 0))
    u_cand = where(ctx.lib, cand, u, -1.0)
    survivor = cand & (u_cand == ctx.to_objects(ctx.event_max(u_cand)))
    return drop & ~(all_gone & survivor)


@register("drop_objects", params=DropObjects, cartesian=True)
def _drop_objects(spec: DropObjects, ctx: StepContext, state: State) -> State:
    """Remove a random subset of objects and close the gaps (never all of them)."""
    drop = _choose(spec.probability, spec.include_met, ctx, state)
    return ctx.compact(state, state["mask"] & ~drop)


_drop_objects.handles_hit = True  # type: ignore[attr-defined]


@register("mask_objects", params=MaskObjects, cartesian=True)
def _mask_objects(spec: MaskObjects, ctx: StepContext, state: State) -> State:
    """Invalidate a random subset of objects in place (slots keep their positions)."""
    drop = _choose(spec.probability, spec.include_met, ctx, state)
    return {**state, "mask": state["mask"] & ~drop}


_mask_objects.handles_hit = True  # type: ignore[attr-defined]
