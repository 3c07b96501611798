"""Cost of the certified-luminosity mask and the blinding guard in shard building.

Builds a shard store from the real 2012 SingleMu file (10k events, one chunk, iterative
executor, no views) three ways, interleaved, best of ``--repeat``: without a mask (the
dataset declares nothing: the baseline), with the 2012 golden JSON, and with the golden
JSON plus two blinded regions (a dimuon mass window and a muon-pT region). Ratios are
to the baseline of the same run.

    python benchmarks/bench_selection.py --out benchmarks/results/selection.json
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import warnings
from pathlib import Path

from _common import interleaved, real_file, write_result

from jetfm_coffea.cluster import Execution
from jetfm_coffea.jobs.shards import build_store
from jetfm_coffea.selection.blinding import load_blinding
from jetfm_coffea.tokens import TokenConfig

GOLDEN_2012 = "Cert_190456-208686_8TeV_22Jan2013ReReco_Collisions12_JSON.txt"
REGIONS = {
    "regions": [
        {
            "name": "z_mumu",
            "all": [
                {"pair_mass": {"objects": ["Muon"]}, "min": 80, "max": 100, "opposite_charge": True}
            ],
        },
        {"name": "hard_muon", "all": [{"objects": ["Muon"], "min_pt": 60}]},
    ]
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore", RuntimeWarning)  # coffea: slim-file cross-references
    path = real_file("Run2012B_SingleMu_10000.root")
    config = TokenConfig()
    blinding = load_blinding(REGIONS, config)
    work = Path(tempfile.mkdtemp(prefix="bench-selection-"))

    def build(meta: dict, blind=None):
        def run() -> None:
            out = work / "store"
            shutil.rmtree(out, ignore_errors=True)
            fileset = {"smu": {"files": {str(path): "Events"}, "metadata": meta}}
            build_store(
                fileset,
                out,
                execution=Execution(executor="iterative", chunksize=10_000),
                token_config=config,
                blinding=blind,
            )

        return run

    data = {"is_data": True, "golden_json": GOLDEN_2012}
    times = interleaved(
        {
            "no_mask": build({}),
            "lumi_mask": build(data),
            "lumi_mask_blinding": build(data, blinding),
        },
        repeat=args.repeat,
    )
    shutil.rmtree(work, ignore_errors=True)
    n = 10_000
    write_result(
        {
            "events": n,
            "seconds": times,
            "events_per_s": {k: n / v for k, v in times.items()},
            "ratio_to_no_mask": {k: times["no_mask"] / v for k, v in times.items()},
        },
        args.out,
    )


if __name__ == "__main__":
    main()
