"""Benchmark: cost of one augmented view vs reading the same columns with uproot.

For the muon columns of the 2012 DoubleMuParked file (pt, eta, phi, mass, charge):

* ``read``: ``uproot`` reading the five jagged branches into awkward arrays;
* ``numpy view``: :func:`augment_tokens` on the padded objects: one full view of the
  pipeline (all steps, random numbers included), the re-applied acceptance and the
  token features, padded -- the coffea-side path (``augment_views`` runs it per view);
* ``numpy objects``: :func:`augment_objects`, the same without the features;
* ``awkward view``: the fused symmetry kernels (rotate_phi, boost_z, boost_transverse,
  reflect_eta in Cartesian form, one conversion in and out) applied directly to the
  jagged awkward arrays with per-event draws;
* ``compiled floor`` / ``float32 numpy floor``: the least arithmetic a view needs,
  compiled into one scalar pass (numba) or as vectorised float32 numpy passes
  (``benchmarks/augment_floor.py``; lower bounds for an implementation of either kind);
* ``torch``: :func:`augment_tensors` (with token features) on padded CPU tensors, and on
  CUDA when available, in events/s.

Timings (CPU time of this process) interleave the measurements and keep the minimum
(and report the median) of ``--repeats`` runs, so a busy machine inflates all of them
alike. Torch is timed in wall-clock time (it may use several threads). Writes a JSON to
``--out`` and prints a markdown table.

    python benchmarks/bench_augment.py --out bench_augment.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot
from _common import real_file

from jetfm_coffea.augment import augment_objects, augment_tensors, augment_tokens, load_pipeline
from jetfm_coffea.augment import kernels as K
from jetfm_coffea.augment.check import muon_objects, muon_token_config
from jetfm_coffea.augment.rng import StepRandom, step_keys, view_keys

BRANCHES = ["Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge"]
PIPELINE = {
    "seed": 1,
    "views": 2,
    "steps": [
        {"name": "rotate_phi"},
        {"name": "boost_z", "max_rapidity": 0.5},
        {"name": "boost_transverse", "max_beta": 0.1},
        {"name": "reflect_eta"},
        {"name": "smear_energy"},
        {"name": "drop_objects", "probability": 0.1},
    ],
}


def _read(path: Path, n: int) -> ak.Array:
    with uproot.open(path) as f:
        return f["Events"].arrays(BRANCHES, entry_stop=n)


def _awkward_view(cols: ak.Array, view: int) -> tuple[ak.Array, ...]:
    """Fused symmetry kernels on jagged arrays; per-event draws broadcast over the muons."""
    n = len(cols)
    ids = np.zeros(n, np.int64), np.zeros(n, np.int64), np.arange(n, dtype=np.int64)
    base = view_keys(1, *ids, view)
    draws = [StepRandom(step_keys(base, i), 1) for i in range(4)]
    pt, eta, phi, mass = (cols[b] for b in BRANCHES[:4])
    px, py, pz, e = K.polar_to_p4(np, pt, eta, phi, mass)
    angle = (2 * draws[0].uniform(1) - 1) * math.pi
    px, py = K.rotate_xy(np, px, py, np.cos(angle), np.sin(angle))
    dy = (2 * draws[1].uniform(1) - 1) * 0.5
    pz, e = K.boost_longitudinal(np, pz, e, np.cosh(dy), np.sinh(dy))
    beta, ang = 0.1 * draws[2].uniform(1), 2 * math.pi * draws[2].uniform(2)
    gamma = (1 - beta * beta) ** -0.5
    px, py, e = K.boost_xy(
        np, px, py, e, beta * np.cos(ang), beta * np.sin(ang), gamma, gamma**2 / (gamma + 1)
    )
    pz = K.reflect_eta(np, pz, np.where(draws[3].uniform(1) < 0.5, -1.0, 1.0))
    pt, eta, phi = K.p4_to_polar(np, px, py, pz)
    return pt, eta, phi, mass


def _floor(objects: dict, n: int, repeats: int) -> tuple[float, float]:
    """Seconds of the lower bounds (``augment_floor``: compiled scalar pass, vectorised
    float32 numpy passes) on the same muons."""
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from augment_floor import floor_seconds, numpy_float32_seconds

    mask = np.asarray(objects["mask"], bool)
    index = np.flatnonzero(mask)
    event, slot = np.divmod(index, mask.shape[1])
    flat = [np.asarray(objects[k], np.float64).reshape(-1)[index] for k in ("pt", "eta", "phi")]
    mass = np.asarray(objects["mass"], np.float64).reshape(-1)[index]
    args = (*flat, mass, event, slot, n, repeats)
    return floor_seconds(*args), numpy_float32_seconds(*args)


def _timed(fn, *args, **kw) -> float:
    """CPU time of the call (process_time): less distorted than wall time when other
    processes compete for the cores; single-threaded numpy/uproot make the two equal on
    an idle machine."""
    t = time.process_time()
    fn(*args, **kw)
    return time.process_time() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=None)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pipeline", type=Path, default=None, help="pipeline YAML")
    parser.add_argument("--out", type=Path, default=Path("bench_augment.json"))
    args = parser.parse_args()

    path = args.input or real_file("Run2012_DoubleMuParked_muons_100k.root")
    pipeline = load_pipeline(args.pipeline or PIPELINE)
    config = muon_token_config()
    cols = _read(path, args.events)
    n = len(cols)
    objects = muon_objects(path, 0, n)
    pad_s = _timed(muon_objects, path, 0, n) - _timed(_read, path, n)

    read, view_np, obj_np, view_ak = [], [], [], []
    for r in range(args.repeats):
        read.append(_timed(_read, path, n))
        view_np.append(_timed(augment_tokens, objects, pipeline, config, r % pipeline.views))
        obj_np.append(_timed(augment_objects, objects, pipeline, config, r % pipeline.views))
        view_ak.append(_timed(_awkward_view, cols, r))
    read_s, np_s, obj_s, ak_s = min(read), min(view_np), min(obj_np), min(view_ak)
    med = {k: float(np.median(v)) for k, v in
           (("read", read), ("numpy_view", view_np), ("awkward_view", view_ak))}  # fmt: skip

    floor_s, floor32_s = _floor(objects, n, args.repeats)

    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    result_torch = {}
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        batch = {k: torch.as_tensor(v, device=device) for k, v in objects.items()}
        times = []
        for r in range(args.repeats + 1):
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            augment_tensors(batch, pipeline, config, r % pipeline.views)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        result_torch[device] = {"view_s": min(times[1:]), "events_per_s": n / min(times[1:])}

    result = {
        "events": n,
        "muons": int(objects["mask"].sum()),
        "pipeline": [s.name for s in pipeline.steps],
        "pipeline_hash": pipeline.hash(),
        "read_s": read_s,
        "padding_s_once_per_chunk": max(pad_s, 0.0),
        "numpy_view_s": np_s,
        "numpy_view_over_read": np_s / read_s,
        "numpy_view_over_read_median": med["numpy_view"] / med["read"],
        "numpy_objects_s": obj_s,
        "numpy_objects_over_read": obj_s / read_s,
        "awkward_view_s": ak_s,
        "awkward_view_over_read": ak_s / read_s,
        "floor_s": floor_s,
        "floor_over_read": floor_s / read_s,
        "floor_numpy_float32_s": floor32_s,
        "floor_numpy_float32_over_read": floor32_s / read_s,
        "median_s": med,
        "torch": result_torch,
        "repeats": args.repeats,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0],
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        },
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    gpu = result_torch.get("cuda", {}).get("events_per_s")
    print(
        "| events | read (uproot) | numpy view (+features) | numpy view/read "
        "| numpy objects/read | awkward view | awkward/read "
        "| compiled floor/read | float32 numpy floor/read | torch CPU ev/s | torch GPU ev/s |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|"
    )
    print(
        f"| {n} | {read_s * 1e3:.1f} ms | {np_s * 1e3:.1f} ms | {np_s / read_s:.0%} "
        f"| {obj_s / read_s:.0%} | {ak_s * 1e3:.1f} ms | {ak_s / read_s:.0%} "
        f"| {floor_s / read_s:.0%} | {floor32_s / read_s:.0%} "
        f"| {result_torch['cpu']['events_per_s']:.3g} | {f'{gpu:.3g}' if gpu else 'n/a'} |"
    )


if __name__ == "__main__":
    main()
