"""Apply an augmentation pipeline to padded objects: numpy (coffea side) and torch (loader).

Both entry points run :func:`apply_pipeline`, which calls the same registered
implementations and therefore the same kernels:

1. four-vectors with a non-finite pt/eta/phi/mass are rejected (masked, counted in
   ``n_nonfinite``) before anything else, so a NaN never propagates;
2. each step draws its random numbers from the per-event counter-based keys of
   :mod:`jetfm_coffea.augment.rng` (seed, run, luminosityBlock, event, view, step);
3. detector acceptance of the token config is re-applied per object type
   (``pt > min_pt`` and ``|eta| < max_abs_eta``; MET exempt): objects that leave it
   are masked; invalid slots are zeroed like padding;
4. token features are recomputed from the transformed four-vectors
   (:meth:`EventTokens.from_objects` for numpy, :func:`compute_features` for torch).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from jetfm_coffea.augment import augmentations as _builtin  # noqa: F401  (registers)
from jetfm_coffea.augment import kernels as K
from jetfm_coffea.augment.config import AugmentationPipeline, load_pipeline
from jetfm_coffea.augment.registry import AUGMENTATIONS, State, StepContext
from jetfm_coffea.augment.rng import StepRandom, step_keys, view_keys
from jetfm_coffea.backend import where
from jetfm_coffea.errors import ConfigError
from jetfm_coffea.tokens.build import EventObjects, EventTokens
from jetfm_coffea.tokens.config import TokenConfig, load_token_config
from jetfm_coffea.tokens.features import compute_features
from jetfm_coffea.tokens.fields import ID_FIELDS, OBJECT_FIELDS

__all__ = [
    "KINEMATIC_FIELDS",
    "apply_acceptance",
    "apply_pipeline",
    "augment_objects",
    "augment_tensors",
    "augment_tokens",
    "augment_views",
]

KINEMATIC_FIELDS = OBJECT_FIELDS  # the padded object fields of EventObjects


def _is_torch(lib: ModuleType) -> bool:
    return lib.__name__ == "torch"


def _bool_to_backend(lib: ModuleType, values: np.ndarray, like: Any) -> Any:
    return values if lib is np else lib.as_tensor(values, device=like.device)


def _met_slots(lib: ModuleType, type_id: Any, token_config: TokenConfig) -> Any:
    """Bool ``[N, T]``: slots whose type_id is that of a 'met' collection."""
    out = type_id != type_id  # all False, right shape/backend (type_id is finite)
    for spec in token_config.collections:
        if spec.kind == "met":
            out = out | (type_id == float(spec.type_id))
    return out


def _fill_padding(lib: ModuleType, state: State) -> State:
    """Harmless kinematics (pt=1, eta=phi=m=0) in invalid slots so the kernels stay finite."""
    m = state["mask"]
    return {
        **state,
        "pt": where(lib, m, state["pt"], 1.0),
        "eta": where(lib, m, state["eta"], 0.0),
        "phi": where(lib, m, state["phi"], 0.0),
        "mass": where(lib, m, state["mass"], 0.0),
    }


def apply_acceptance(lib: ModuleType, state: State, token_config: TokenConfig) -> State:
    """Mask objects outside their collection's acceptance: ``pt > min_pt``, ``|eta| < max_abs_eta``.

    The thresholds are those :func:`select_objects` applied when the tokens were built;
    'met' collections are exempt.
    """
    mask = state["mask"]
    for spec in token_config.collections:
        if spec.kind == "met":
            continue
        fail = state["pt"] <= spec.min_pt
        if spec.max_abs_eta is not None:
            fail = fail | (lib.abs(state["eta"]) >= spec.max_abs_eta)
        mask = mask & ~((state["type_id"] == float(spec.type_id)) & fail)
    return {**state, "mask": mask}


_CARTESIAN_KEYS = ("px", "py", "pz", "e")


def _to_cartesian(lib: ModuleType, state: State) -> State:
    """Polar -> Cartesian state (pt, eta, phi replaced by px, py, pz, e)."""
    p4 = K.polar_to_p4(lib, state["pt"], state["eta"], state["phi"], state["mass"])
    out = {k: v for k, v in state.items() if k not in ("pt", "eta", "phi")}
    out.update(zip(_CARTESIAN_KEYS, p4, strict=True))
    return out


def _to_polar(lib: ModuleType, state: State, keep: bool = False) -> State:
    """Cartesian -> polar state; ``keep`` leaves px, py, pz, e in it (for the features)."""
    pt, eta, phi = K.p4_to_polar(lib, state["px"], state["py"], state["pz"])
    out = state if keep else {k: v for k, v in state.items() if k not in _CARTESIAN_KEYS}
    return {**out, "pt": pt, "eta": eta, "phi": phi}


def _select(lib: ModuleType, cond: Any, new: State, old: State) -> State:
    return {k: where(lib, cond, new[k], old[k]) for k in new}


def _ids_numpy(ids: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = []
    for name in ID_FIELDS:
        if name not in ids:
            raise ConfigError(
                f"augmentation needs per-event {name!r} to seed its random numbers "
                "(files without event ids: use the entry number as 'event', run = lumi = 0)"
            )
        v = ids[name]
        if type(v).__module__.startswith("torch"):
            v = v.detach().cpu().numpy()
        out.append(np.asarray(v).astype(np.int64, copy=False).reshape(-1))
    return out[0], out[1], out[2]


def apply_pipeline(
    lib: ModuleType,
    state: State,
    ids: Mapping[str, Any],
    pipeline: AugmentationPipeline,
    token_config: TokenConfig,
    view: int,
    *,
    acceptance: bool = True,
    fused: bool = True,
) -> tuple[State, Any]:
    """Backend-agnostic core: ``(state, n_rejected)``.

    ``fused`` (default) runs consecutive steps that have a Cartesian implementation on
    one Cartesian state (one conversion in and out; the result keeps ``px, py, pz, e``
    as well); ``fused=False`` runs the polar reference implementations step by step.

    ``state`` holds ``pt, eta, phi, mass, charge, btag, type_id`` (float) and ``mask``
    (bool) on the ``lib`` backend, either padded ``[N, T]`` or, for numpy, flat ``[M]``
    with the layout keys ``_event`` (event index, sorted) and ``_slot`` (padded slot)
    holding numpy integers. ``ids`` are the per-event ``run, luminosityBlock, event``
    (numpy or torch integers). ``n_rejected`` ``[N]`` counts the valid four-vectors with
    a non-finite component, masked before augmentation. Invalid entries of a padded
    result are zero; a flat result keeps them (with ``mask`` False) for the caller.
    """
    if view < 0:
        raise ConfigError(f"view index must be >= 0, got {view}")
    run, lumi, event = _ids_numpy(ids)
    flat = "_event" in state
    n_slots = token_config.n_tokens if flat else state["pt"].shape[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        finite = lib.isfinite(state["pt"]) & lib.isfinite(state["eta"])
        finite = finite & lib.isfinite(state["phi"]) & lib.isfinite(state["mass"])
        bad = state["mask"] & ~finite
        state = {**state, "mask": state["mask"] & finite}
        if flat:  # rejected objects leave the flat arrays for good
            n_rejected = np.bincount(state["_event"][bad], minlength=len(run))
            if bad.any():
                state = {k: v[~bad] for k, v in state.items()}
        else:
            n_rejected = bad.sum(-1)
            state = _fill_padding(lib, state)
        base = view_keys(pipeline.seed, run, lumi, event, view) if pipeline.steps else None
        cartesian, type_id, is_met = False, None, None
        for index, step in enumerate(pipeline.steps):
            entry = AUGMENTATIONS[step.name]
            impl = entry.cartesian if fused else None
            if impl is not None and not cartesian:
                state, cartesian = _to_cartesian(lib, state), True
            elif impl is None and cartesian:
                state, cartesian = _to_polar(lib, state), False
            impl = impl or entry.implementation
            if state["type_id"] is not type_id:  # new layout (first step or compaction)
                type_id = state["type_id"]
                is_met = _met_slots(lib, type_id, token_config)
            rand = StepRandom(step_keys(base, index), n_slots)
            hit = None
            if step.apply_probability < 1.0:
                hit = rand.uniform(0) < step.apply_probability
                hit = (
                    hit.take(state["_event"])
                    if flat
                    else _bool_to_backend(lib, hit[:, None], state["mask"])
                )
            ctx = StepContext(
                lib=lib,
                is_met=is_met,
                token_config=token_config,
                like=state["mass"],
                rand=rand,
                event_index=state.get("_event"),
                slot=state.get("_slot"),
                hit=hit,
            )
            new = impl(step, ctx, state)
            if hit is not None and not getattr(impl, "handles_hit", False):
                new = _select(lib, hit, new, state)
            state = new
        if cartesian:
            state = _to_polar(lib, state, keep=True)
        if acceptance:
            state = apply_acceptance(lib, state, token_config)
        if not flat:  # flat callers scatter the valid objects only
            m = state["mask"]
            state = {k: v if k == "mask" else where(lib, m, v, 0.0) for k, v in state.items()}
    return state, n_rejected


def _get(objects: EventObjects | Mapping[str, Any], name: str) -> Any:
    if isinstance(objects, Mapping):
        return objects.get(name)
    return getattr(objects, name, None)


def _augment_flat(
    objects: EventObjects | Mapping[str, Any],
    pipeline: AugmentationPipeline,
    token_config: TokenConfig,
    view: int,
    acceptance: bool,
    fused: bool,
) -> tuple[State, np.ndarray, dict[str, np.ndarray]]:
    """Run the pipeline on the valid objects only (flat float64 arrays).

    Returns the flat result restricted to the kept objects, their padded flat positions
    and the per-event ``run, luminosityBlock, event, n_nonfinite``.
    """
    mask = np.asarray(_get(objects, "mask"), bool)
    n_slots = mask.shape[-1]
    index = np.flatnonzero(mask)  # 1-d indices: much faster than 2-d fancy indexing
    ev, slot = np.divmod(index, n_slots)
    state: State = {}
    for name in KINEMATIC_FIELDS:
        value = _get(objects, name)
        if value is None:
            state[name] = np.zeros(len(index))
        else:
            state[name] = np.asarray(value).reshape(-1).take(index).astype(np.float64)
    state.update(mask=np.ones(len(ev), bool), _event=ev, _slot=slot)
    ids = {k: _get(objects, k) for k in ID_FIELDS if _get(objects, k) is not None}
    out, n_rejected = apply_pipeline(
        np, state, ids, pipeline, token_config, view, acceptance=acceptance, fused=fused
    )
    run, lumi, event = _ids_numpy(ids)
    kept = np.flatnonzero(out["mask"])
    needed = (*KINEMATIC_FIELDS, "px", "py", "pz", "_event", "_slot")
    if len(kept) < len(out["mask"]):
        out = {k: out[k].take(kept) for k in needed if k in out}
    target = out["_event"] * n_slots + out["_slot"]
    prior = _get(objects, "n_nonfinite")
    prior = np.zeros(len(run), np.int64) if prior is None else np.asarray(prior, np.int64)
    per_event = {
        "run": run,
        "luminosityBlock": lumi,
        "event": event,
        "n_nonfinite": prior + n_rejected.astype(np.int64),
    }
    return out, target, per_event


def _scatter_objects(
    out: State, target: np.ndarray, shape: tuple[int, ...], per_event: dict[str, np.ndarray]
) -> EventObjects:
    padded = {}
    for name in KINEMATIC_FIELDS:
        arr = np.zeros(shape[0] * shape[1], np.float32)
        arr[target] = out[name]
        padded[name] = arr.reshape(shape)
    new_mask = np.zeros(shape[0] * shape[1], bool)
    new_mask[target] = True
    return EventObjects(**padded, mask=new_mask.reshape(shape), **per_event)


def augment_objects(
    objects: EventObjects | Mapping[str, Any],
    pipeline: AugmentationPipeline | Mapping[str, Any] | str,
    token_config: TokenConfig | Mapping[str, Any] | str | None = None,
    view: int = 0,
    *,
    acceptance: bool = True,
    fused: bool = True,
) -> EventObjects:
    """One augmented view of padded numpy objects (``EventObjects`` or a dict of arrays).

    The dict needs ``pt, eta, phi, mass, type_id, mask`` ``[N, T]`` and ``run,
    luminosityBlock, event`` ``[N]``; ``charge, btag, n_nonfinite`` are optional. Only
    the valid objects are transformed (flat float64 arrays); the result is padded
    float32 like :func:`select_objects`, with kept objects in their slots (compacted
    by ``drop_objects``). ``n_nonfinite`` adds the four-vectors rejected for NaN/inf to
    the input's. ``acceptance=False`` skips re-applying the detector acceptance;
    ``fused=False`` runs the polar reference implementations step by step.
    """
    pipeline = load_pipeline(pipeline)
    token_config = load_token_config(token_config)
    shape = np.shape(_get(objects, "mask"))
    out, target, per_event = _augment_flat(objects, pipeline, token_config, view, acceptance, fused)
    return _scatter_objects(out, target, shape, per_event)


def augment_tokens(
    objects: EventObjects | Mapping[str, Any],
    pipeline: AugmentationPipeline | Mapping[str, Any] | str,
    token_config: TokenConfig | Mapping[str, Any] | str | None = None,
    view: int = 0,
    *,
    acceptance: bool = True,
    fused: bool = True,
) -> EventTokens:
    """One augmented view as token tensors: :func:`augment_objects` followed by the
    features, computed on the flat float64 result before it is padded (with the
    trig-free Cartesian formulas when the pipeline ran fused). Equal to
    ``EventTokens.from_objects(augment_objects(...))`` to float32 rounding (tested)."""
    pipeline = load_pipeline(pipeline)
    token_config = load_token_config(token_config)
    shape = np.shape(_get(objects, "mask"))
    out, target, per_event = _augment_flat(objects, pipeline, token_config, view, acceptance, fused)
    cartesian = {k: out[k] for k in ("px", "py", "pz") if k in out}
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        feats, valid, _ = compute_features(
            np, token_config.feature_names, **{k: out[k] for k in KINEMATIC_FIELDS},
            mask=np.ones(len(target), bool), **cartesian,
        )  # fmt: skip
    n_bad = np.bincount(out["_event"][~valid], minlength=shape[0])
    if not valid.all():
        out = {k: v[valid] for k, v in out.items()}
        target, feats = target[valid], feats[valid]
    per_event["n_nonfinite"] = per_event["n_nonfinite"] + n_bad
    objs = _scatter_objects(out, target, shape, per_event)
    tokens = np.zeros((shape[0] * shape[1], len(token_config.features)), np.float32)
    tokens[target] = feats
    return EventTokens.from_parts(tokens.reshape(*shape, -1), objs, token_config.feature_names)


def augment_views(
    objects: EventObjects | Mapping[str, Any],
    pipeline: AugmentationPipeline | Mapping[str, Any] | str,
    token_config: TokenConfig | Mapping[str, Any] | str | None = None,
    *,
    acceptance: bool = True,
) -> list[EventTokens]:
    """``pipeline.views`` augmented views of the same events, as token tensors."""
    pipeline = load_pipeline(pipeline)
    token_config = load_token_config(token_config)
    return [
        augment_tokens(objects, pipeline, token_config, v, acceptance=acceptance)
        for v in range(pipeline.views)
    ]


def augment_tensors(
    batch: Mapping[str, Any],
    pipeline: AugmentationPipeline | Mapping[str, Any] | str,
    token_config: TokenConfig | Mapping[str, Any] | str | None = None,
    view: int = 0,
    *,
    acceptance: bool = True,
    features: bool = True,
    fused: bool = True,
) -> dict[str, Any]:
    """One augmented view of a padded torch batch (the training loader's entry point).

    ``batch`` holds float tensors ``[B, T]`` ``pt, eta, phi, mass, type_id`` (``charge``
    and ``btag`` optional), the bool ``mask`` and the per-event ids ``run,
    luminosityBlock, event`` ``[B]`` (tensors or numpy). Computation stays on the
    tensors' device and dtype; the random numbers are the numpy draws of
    :func:`augment_objects`, so both backends see the same views. Returns the
    augmented kinematics, ``mask``, ``n_nonfinite`` ``[B]`` (rejected four-vectors plus
    tokens with non-finite features) and, with ``features``, ``tokens`` ``[B, T, F]``.
    """
    import torch

    pipeline = load_pipeline(pipeline)
    token_config = load_token_config(token_config)
    pt = batch["pt"]
    state: State = {}
    for name in KINEMATIC_FIELDS:
        value = batch.get(name)
        state[name] = torch.zeros_like(pt) if value is None else value.to(pt.dtype)
    state["mask"] = batch["mask"].to(torch.bool)
    out, n_rejected = apply_pipeline(
        torch, state, batch, pipeline, token_config, view, acceptance=acceptance, fused=fused
    )
    cartesian = {k: out.pop(k) for k in ("px", "py", "pz", "e") if k in out}
    cartesian.pop("e", None)
    result: dict[str, Any] = dict(out)
    result["n_nonfinite"] = n_rejected.to(torch.int64)
    if features:
        tokens, mask, n_bad = compute_features(
            torch, token_config.feature_names, **{k: out[k] for k in KINEMATIC_FIELDS},
            mask=out["mask"], **cartesian,
        )  # fmt: skip
        result.update(tokens=tokens, mask=mask, n_nonfinite=result["n_nonfinite"] + n_bad)
    return result
