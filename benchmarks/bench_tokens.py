"""Token building throughput vs a bare uproot read of the same branches (one core).

    python benchmarks/bench_tokens.py [--file ROOT] [--out results/tokens.json]

Both sides read the file from scratch each repetition: the baseline is
``uproot.open(f)["Events"].arrays(branches)`` for exactly the branches the token path
needs (taken from dask-awkward's column projection); the token side is coffea's
virtual-mode NanoEvents + ``build_tokens``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import interleaved, real_file, write_result


def main() -> None:

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--file", default=str(real_file("Run2012B_SingleMu_10000.root")))
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import dask_awkward as dak
    import uproot
    from coffea.nanoevents import NanoAODSchema, NanoEventsFactory

    from jetfm_coffea.tokens import build_tokens

    def events(mode: str):
        return NanoEventsFactory.from_root(
            {args.file: "Events"}, schemaclass=NanoAODSchema, mode=mode
        ).events()

    (branches,) = dak.necessary_columns(build_tokens(events("dask"))).values()
    branches = sorted(branches)
    n = uproot.open(args.file)["Events"].num_entries

    def read() -> None:
        with uproot.open(args.file) as f:
            f["Events"].arrays(branches, library="ak")

    def tokens() -> None:
        build_tokens(events("virtual"))

    best = interleaved({"uproot_read": read, "build_tokens": tokens}, args.repeat)
    result = {
        "benchmark": "tokens",
        "file": Path(args.file).name,
        "events": n,
        "branches": len(branches),
        "uproot_read_s": best["uproot_read"],
        "build_tokens_s": best["build_tokens"],
        "uproot_events_per_s": n / best["uproot_read"],
        "tokens_events_per_s": n / best["build_tokens"],
        "ratio_tokens_to_read_rate": best["uproot_read"] / best["build_tokens"],
    }
    write_result(result, args.out)
    print(
        f"| token building (read+tokens) | {result['tokens_events_per_s']:,.0f} ev/s "
        f"| uproot read {result['uproot_events_per_s']:,.0f} ev/s "
        f"| ratio {result['ratio_tokens_to_read_rate']:.2f} |"
    )


if __name__ == "__main__":
    main()
