"""Pretraining throughput: each speed-up as a ratio to the plain loop, measured in one run.

Runs the real training loop (``jetfm_coffea.train.pretrain``) on real CMS tokens (2012
SingleMu, default token config, repeated with fresh event numbers) and reads its
metrics. For every model size it times, interleaved in one invocation:

* ``baseline``: the plain loop (padded batch of the longest event, no read-ahead),
  tensors resident on the device;
* ``grouped``: events encoded in groups of similar token count (``train.group_tokens``);
* ``prefetch``: + next batches prepared in a thread, pinned, copied on a side stream;
* ``compile``: + ``train.compile`` (sizes named by ``--compile``; timed after all sizes,
  against a baseline timed beside it);
* ``loader``: the ``prefetch`` setting fed by the Zarr shard loader over a store of
  ``--store-events`` events (in-process, and with ``--workers`` DataLoader workers);
* ``stored-views`` (``--compare-views``): the ``prefetch`` setting with the two views of
  every event precomputed (what a store built with ``views: 2`` holds) instead of fresh
  physics views made on the device each step; ``fresh_over_stored`` is the step-rate
  ratio of the two (issue 14's GPU check: >= 0.9 for ``small`` at batch 4096);

and reports events/s, the ratio to ``baseline`` and, for the loader rows, the ratio to
the same setting with resident tensors (the loader's cost), and the model FLOP
utilisation: *useful* FLOPs per event (:mod:`jetfm_coffea.model.flops`: each event's
real token count and those of its fresh views, class token, forward + backward = 3x
forward, heads included) x events/s, over the matmul peak measured in the same process
with the same threads: fp32 (2048^3 products) on the CPU, bf16 (8192^3) on a GPU. On the
CPU it also records the fp32 rate of the model's widest matmul at the batch's token
rows (what these shapes can reach) and the load average at start and end.

    python benchmarks/bench_pretrain.py --sizes tiny,small --out bench.json
    python benchmarks/bench_pretrain.py --device cuda --sizes small,base,tiny --compile small \\
        --store-events 1000000 --workers 4 --compare-views --out gpu.json

Results are written (and printed) after every size, so a run stopped by a time limit
keeps the sizes it finished.
"""

from __future__ import annotations

import jetfm_coffea  # noqa: F401  # isort: skip  (first: OpenMP's wait policy before torch)

import argparse
import dataclasses
import json
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _common import load_average, real_file

from jetfm_coffea.model import build_model, count_parameters, model_config_for
from jetfm_coffea.model.flops import pretrain_flops_per_event
from jetfm_coffea.runtime import resolve_device
from jetfm_coffea.tokens import TokenConfig, build_tokens
from jetfm_coffea.train import TensorEventDataset, load_pretrain_config, pretrain, read_metrics
from jetfm_coffea.train.data import shards_source
from jetfm_coffea.train.views import OBJECT_KEYS, make_views

SINGLEMU = "Run2012B_SingleMu_10000.root"


def real_event_tokens() -> Any:
    """:class:`EventTokens` of the 10k real 2012 SingleMu events (default token config)."""
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    path = real_file(SINGLEMU)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = NanoEventsFactory.from_root(
            {str(path): "Events"}, schemaclass=NanoAODSchema, mode="virtual"
        ).events()
        return build_tokens(events, TokenConfig())


def repeated(tk: Any, copy: int) -> Any:
    """The same real events with fresh event numbers (copy ``copy`` of the file)."""
    offset = np.int64(copy) * np.int64(10**9)
    return dataclasses.replace(tk, event=np.asarray(tk.event, np.int64) + offset)


def resident_arrays(tk: Any, n: int) -> dict[str, np.ndarray]:
    reps = -(-n // len(tk))
    parts = [repeated(tk, i) for i in range(reps)]
    out = {
        k: np.concatenate([getattr(p, k) for p in parts])[:n] for k in ("tokens", "mask", "event")
    }
    objects = np.stack([getattr(tk.objects, k) for k in OBJECT_KEYS], -1)  # for fresh views
    out["objects"] = np.concatenate([objects] * reps)[:n]
    return out


def stored_views(arrays: dict, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Epoch-0 views of every event (what a store built with the same pipeline holds)."""
    config = TokenConfig()
    pipeline = load_pretrain_config(None).augment
    views, masks = [], []
    for i in range(0, len(arrays["mask"]), chunk):
        batch = {k: torch.as_tensor(arrays[k][i : i + chunk]) for k in ("objects", "mask")}
        for k in ("run", "luminosityBlock"):
            batch[k] = torch.zeros(len(batch["mask"]), dtype=torch.int64)
        batch["event"] = torch.as_tensor(arrays["event"][i : i + chunk].astype(np.int64))
        v, m = make_views(batch, pipeline, config, 0, 2)
        views.append(v.numpy())
        masks.append(m.numpy())
    return np.concatenate(views), np.concatenate(masks)


def make_store(tk: Any, path: Path, n_events: int) -> tuple[Path, float]:
    """A shard store of ``n_events`` real events (copies of the file, fresh event numbers)."""
    from jetfm_coffea.shards import create_store, write_manifest, write_shard
    from jetfm_coffea.shards.writer import ShardSource

    t0 = time.perf_counter()
    config = TokenConfig()
    create_store(path, config)
    n = len(tk)
    for i in range(-(-n_events // n)):
        source = ShardSource("bench", SINGLEMU, f"copy{i:05d}", 0, n)
        write_shard(path, repeated(tk, i), source, config)
    write_manifest(path)
    return path, time.perf_counter() - t0


def useful_flops_per_event(size: str, arrays: dict, sample: int = 2048) -> float:
    """Useful training FLOPs per event (:mod:`jetfm_coffea.model.flops`): the real token
    count of each event (its masked copy) and of each of its fresh views, on a sample."""
    cfg = model_config_for(size=size)
    part = {k: arrays[k][:sample] for k in ("objects", "mask", "event")}
    _, view_mask = stored_views(part)
    return pretrain_flops_per_event(cfg, part["mask"].sum(1), view_mask.sum(2))


def measured_fp32_rate(shapes: tuple[int, int, int] = (2048, 2048, 2048)) -> float:
    """fp32 matmul FLOP/s on the CPU with the current torch threads (best of 10)."""
    m, k, n = shapes
    a, b = torch.randn(m, k), torch.randn(k, n)
    a @ b
    best = float("inf")
    for _ in range(10):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best


def measured_bf16_peak(device: torch.device) -> float:
    """Dense bf16 matmul FLOP/s on this card (8192^3 products on random data, median)."""
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        a @ b
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return 2 * n**3 / statistics.median(times)


def timed_run(
    cfg_train: dict, size: str, data_factory, steps: int, warmup: int, views: str = "fresh"
) -> dict:
    cfg = load_pretrain_config(
        {
            "views": views,
            "model": {"size": size},
            "train": {
                "steps": warmup + steps,
                "log_every": warmup,
                "monitor_every": 10**6,
                "checkpoint_every": 10**6,
                "progress": False,
                **cfg_train,
            },
            "optim": {"warmup_steps": 2},
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        pretrain(cfg, data_factory(), Path(tmp) / "run", keep_model=False)
        wall = time.perf_counter() - t0
        recs = [r for r in read_metrics(Path(tmp) / "run") if "events_per_s" in r][1:]
    return {
        "events_per_s": statistics.mean(r["events_per_s"] for r in recs),
        "step_time_ms": 1e3 * statistics.mean(r["step_time_s"] for r in recs),
        "loader_wait_frac": statistics.mean(r["loader_wait_frac"] for r in recs),
        "wall_s": wall,
    }


VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"group_tokens": False, "prefetch": 0},
    "grouped": {"group_tokens": True, "prefetch": 0},
    "prefetch": {"group_tokens": True, "prefetch": 2},
    "compile": {"group_tokens": True, "prefetch": 2, "compile": True},
}


def bench_size(
    size: str, args, device: torch.device, arrays, store, compile_only: bool = False
) -> list[dict]:
    batch, steps, warmup = args.batch_size, args.steps, args.warmup

    def resident(stored: bool = False):
        extra = {"views": arrays["views"], "view_mask": arrays["view_mask"]} if stored else {}
        ds = TensorEventDataset(arrays["tokens"], arrays["mask"], event=arrays["event"],
                                objects=arrays["objects"], batch_size=batch, seed=1,
                                **extra)  # fmt: skip
        ds.arrays = {k: v.to(device) for k, v in ds.arrays.items()}  # already on the device
        return ds

    def loader(workers: int):
        return lambda: shards_source(store, batch_size=batch, seed=1, num_workers=workers)

    plan: list[tuple[str, str, dict, Any]] = [
        ("baseline", "resident", VARIANTS["baseline"], resident)
    ]
    if "views" in arrays and not compile_only:
        plan.append(("stored-views", "resident", VARIANTS["prefetch"], lambda: resident(True)))
    if compile_only:
        plan.append(("compile", "resident", VARIANTS["compile"], resident))
    else:
        for name in ("grouped", "prefetch"):
            plan.append((name, "resident", VARIANTS[name], resident))
        if store is not None:
            for workers in sorted({0, args.workers}):
                plan.append(
                    ("prefetch", f"loader-{workers}w", VARIANTS["prefetch"], loader(workers))
                )
    base = {"device": str(device), "batch_size": batch}
    rows: dict[tuple[str, str], list[dict]] = {}
    timed_run({**base, **VARIANTS["baseline"]}, size, resident, 1, 1)  # warm-up, not timed
    for _ in range(args.repeat):  # interleaved repeats: robust ratios on a shared machine
        for name, feed, train, factory in plan:
            views = "stored" if name == "stored-views" else "fresh"
            r = timed_run({**base, **train}, size, factory, steps, warmup, views)
            rows.setdefault((name, feed), []).append(r)
    best = {k: max(v, key=lambda r: r["events_per_s"]) for k, v in rows.items()}
    ref = best[("baseline", "resident")]["events_per_s"]
    out = []
    for (name, feed), r in best.items():
        same_resident = best.get((name, "resident"), {}).get("events_per_s")
        out.append(
            {
                "size": size,
                "variant": name,
                "feed": feed,
                **r,
                "ratio_to_baseline": r["events_per_s"] / ref,
                "ratio_to_resident": r["events_per_s"] / same_resident if same_resident else None,
            }
        )
    stored = best.get(("stored-views", "resident"))
    if stored:  # fresh physics views made on the device vs the same views precomputed
        fresh = best[("prefetch", "resident")]["events_per_s"]
        for row in out:
            row["fresh_over_stored"] = fresh / stored["events_per_s"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,small")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=2, help="interleaved repeats (best kept)")
    ap.add_argument("--batch-size", type=int, default=None, help="default 4096 GPU, 256 CPU")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, auto")
    ap.add_argument("--compile", default="", help="sizes to time with train.compile too")
    ap.add_argument("--store-events", type=int, default=0, help="shard store size (0: none)")
    ap.add_argument("--workers", type=int, default=4, help="DataLoader workers of the loader row")
    ap.add_argument(
        "--compare-views", action="store_true", help="also time precomputed (stored) views"
    )
    ap.add_argument("--out", default="bench_pretrain.json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    gpu = device.type == "cuda"
    args.batch_size = args.batch_size or (4096 if gpu else 256)
    tk = real_event_tokens()
    n = args.batch_size * (args.steps + args.warmup + 2)
    arrays = resident_arrays(tk, n)
    if args.compare_views:
        arrays["views"], arrays["view_mask"] = stored_views(arrays)
    meta: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.machine(),
        "cpu_count": __import__("os").cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if gpu else "cpu",
        "load_average_start": load_average(),
        "omp_wait_policy": __import__("os").environ.get("OMP_WAIT_POLICY"),
        "tokens_per_event_padded": int(tk.mask.shape[1]),
        "mean_valid_tokens": float(tk.mask.sum(1).mean()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        store = None
        if args.store_events:
            store, seconds = make_store(tk, Path(tmp) / "store", args.store_events)
            meta.update(store_events=-(-args.store_events // len(tk)) * len(tk),
                        store_write_s=seconds)  # fmt: skip
        if gpu:
            peak = measured_bf16_peak(device)
            meta["bf16_peak_tflops_measured"] = peak / 1e12
        else:  # same process, same threads as the training runs
            peak = measured_fp32_rate()
            meta["fp32_peak_gflops_measured"] = peak / 1e9
            # the block's widest product at the batch's token rows: what these shapes reach
            rows = int(args.batch_size * 3 * (meta["mean_valid_tokens"] + 1))
            meta["fp32_model_shape_gflops"] = measured_fp32_rate((rows, 192, 768)) / 1e9
        results: list[dict] = []
        sizes = {*args.sizes.split(","), *filter(None, args.compile.split(","))}
        flops = {size: useful_flops_per_event(size, arrays) for size in sizes}
        meta["useful_mflop_per_event"] = {k: v / 1e6 for k, v in flops.items()}
        for size in args.sizes.split(","):
            rows = bench_size(size, args, device, arrays, store)
            params = count_parameters(build_model(model_config_for(size=size)))
            for r in rows:
                r["params"] = params
                achieved = r["events_per_s"] * flops[size]
                r["useful_gflops"], r["useful_tflops"] = achieved / 1e9, achieved / 1e12
                r["mfu"] = achieved / peak
            results += rows
            Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
            print_table(rows, gpu, header=size == args.sizes.split(",")[0])
        # compile last: its compilation time must not keep the other sizes from running
        for size in filter(None, args.compile.split(",")):
            rows = [r for r in bench_size(size, args, device, arrays, store, compile_only=True)
                    if r["variant"] == "compile"]  # fmt: skip
            for r in rows:
                r["params"] = count_parameters(build_model(model_config_for(size=size)))
                achieved = r["events_per_s"] * flops[size]
                r["useful_gflops"], r["useful_tflops"] = achieved / 1e9, achieved / 1e12
                r["mfu"] = achieved / peak
            results += rows
            Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
            print_table(rows, gpu, header=False)
    meta["load_average_end"] = load_average()
    Path(args.out).write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    print(f"\n{json.dumps(meta)}")


def print_table(rows: list[dict], gpu: bool, header: bool) -> None:
    cols = ["size", "variant", "feed", "events_per_s", "ratio_to_baseline", "ratio_to_resident",
            "loader_wait_frac", "useful_gflops", "mfu"]  # fmt: skip
    cols += ["fresh_over_stored"] if any("fresh_over_stored" in r for r in rows) else []
    if header:
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{r.get(c):,.3g}" if isinstance(r.get(c), float) else str(r.get(c)) for c in cols]
        print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
