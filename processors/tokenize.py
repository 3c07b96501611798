"""TokenizeProcessor: NanoAOD events -> event tokens, a cutflow and multiplicity histograms.

Stateless and picklable; works in virtual mode (``processor.Runner``) and in dask mode
(``coffea.dataset_tools.apply_to_fileset``), producing the same numbers.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import hist
import numpy as np
from coffea import processor

from jetfm_coffea.selection.lumi import CERTIFIED_LUMI, certify, warn_if_all_removed
from jetfm_coffea.tokens import EventTokens, TokenConfig, build_tokens, load_token_config
from jetfm_coffea.tokens.build import _empty_tokens

__all__ = ["TokenizeProcessor", "concat_tokens", "finalize_output"]


def _dask_hist() -> type:
    from hist.dask import Hist

    return Hist


def _is_dask(events: Any) -> bool:
    return type(events).__module__.startswith("dask_awkward")


def concat_tokens(parts: list[EventTokens], config: TokenConfig) -> EventTokens:
    """Concatenate token batches into one, ordered by (run, luminosityBlock, event)."""
    if not parts:
        return _empty_tokens(config)
    record = ak.concatenate([p.to_awkward() for p in parts])
    order = np.lexsort(
        (
            ak.to_numpy(record.event),
            ak.to_numpy(record.luminosityBlock),
            ak.to_numpy(record.run),
        )
    )
    return EventTokens.from_awkward(record[order], config)


class TokenizeProcessor(processor.ProcessorABC):
    """Apply the one token path to every chunk and summarise what it kept.

    Output per dataset: ``cutflow`` (dict of counts), ``multiplicity`` (hist: tokens per
    event by collection) and, with ``return_tokens``, the tokens themselves. Collision
    data are first restricted to certified luminosity sections
    (:func:`jetfm_coffea.selection.lumi.certify`; cutflow line ``certified_lumi``).
    """

    def __init__(self, token_config: TokenConfig | str | dict | None = None, return_tokens=True):
        self.token_config = load_token_config(token_config)
        self.return_tokens = return_tokens

    def _histogram(self, dask: bool) -> Any:
        cls = _dask_hist() if dask else hist.Hist
        names = [c.name for c in self.token_config.collections]
        top = max(c.max_count for c in self.token_config.collections) + 1
        return cls(
            hist.axis.StrCategory(names, name="collection", label="collection"),
            hist.axis.Integer(0, top, name="n", label="tokens per event"),
            storage=hist.storage.Double(),
        )

    def empty_output(self) -> dict:
        return {}

    def process(self, events: Any) -> dict:
        dataset = events.metadata.get("dataset", "dataset") if events.metadata else "dataset"
        cfg = self.token_config
        dask = _is_dask(events)
        events, lumi_lines = certify(events)  # collision data: certified sections only
        if dask:
            import dask_awkward as lib

            record = build_tokens(events, cfg)
        else:
            lib = ak
            tokens = build_tokens(events, cfg)
            record = tokens.to_awkward()
        mask, type_id = record["mask"], record["type_id"]
        counts = lib.sum(mask, axis=1)
        cutflow = {
            "events": lib.num(counts, axis=0),
            **lumi_lines,  # collision data: events read, then certified_lumi
            "events_with_tokens": lib.sum(counts > 0, axis=0),
            "tokens": lib.sum(counts, axis=0),
            "nonfinite_dropped": lib.sum(record["n_nonfinite"], axis=0),
        }
        histogram = self._histogram(dask)
        for spec in cfg.collections:
            per_event = lib.sum(mask & (type_id == spec.type_id), axis=1)
            cutflow[f"tokens_{spec.name}"] = lib.sum(per_event, axis=0)
            histogram.fill(collection=spec.name, n=per_event)
        out: dict[str, Any] = {"cutflow": cutflow, "multiplicity": histogram}
        if self.return_tokens:
            out["tokens"] = record if dask else [tokens]
        return {dataset: out}

    def postprocess(self, accumulator: dict) -> dict:
        return finalize_output(accumulator, self.token_config)


def finalize_output(output: dict, config: TokenConfig) -> dict:
    """Turn per-chunk token lists or computed dask records into one EventTokens per dataset,
    and counts into plain ints, so virtual and dask mode give identical objects."""
    for dataset, result in output.items():
        result["cutflow"] = {k: int(v) for k, v in result["cutflow"].items()}
        if CERTIFIED_LUMI in result["cutflow"]:
            flow = result["cutflow"]
            warn_if_all_removed(dataset, flow["events"], flow[CERTIFIED_LUMI])
        tokens = result.get("tokens")
        if isinstance(tokens, list):
            result["tokens"] = concat_tokens(tokens, config)
        elif isinstance(tokens, ak.Array):
            result["tokens"] = concat_tokens([EventTokens.from_awkward(tokens, config)], config)
    return output
