"""Build ``opendata/catalogue.json`` offline from the compiled reference files.

This is how the first catalogue was made. It reads, and only reads:

* ``agc_cms2015_nanoaod_inputs.json`` -- the AGC ``nanoaod_inputs.json`` (file URLs, events);
* ``cms_opendata_records.md`` -- record ids, events, files and DOIs compiled from the portal;
* ``lumimasks/*.txt`` -- the golden JSONs exactly as published (copied next to the catalogue).

Every fact in the output comes from one of these; nothing is fetched. A maintainer with
internet access refreshes the catalogue from the portal with ``regenerate.py`` instead.
Never imported at run time.

Usage::

    python opendata/maintenance/from_reference.py ../shared/opendata-reference
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
OPENDATA = HERE.parent
SCHEMA_VERSION = "1.0.0"

SOURCES = {
    "S1": "github.com/cernopendata/opendata.cern.ch @ cbdb4cc2: data/records/*.json "
    "(the portal's own record metadata)",
    "S2": "portal record pages https://opendata.cern.ch/record/<recid> (match S1)",
    "S3": "github.com/iris-hep/analysis-grand-challenge @ c37bf595: nanoaod_inputs.json, "
    "analyses/cms-open-data-ttbar/utils/file_input.py, datasets/cms-open-data-2015/README.md",
    "S4": "secondary, unverified: unattributed GitHub markdown quoting portal dataset sizes "
    "(simulation events/files not cross-checked against the portal)",
    "S5": "secondary: H-to-WW-NanoAOD-analysis docs (cross-sections chosen by that analysis, "
    "citing CMS SummaryTable1G25ns / GenXSecAnalyzer)",
}

# Golden JSONs: record id, year, sqrt(s), adler32 published on the portal (S1).
LUMIMASKS = {
    "Cert_160404-180252_7TeV_ReRecoNov08_Collisions11_JSON.txt": (1001, 2011, 7, "468809e3"),
    "Cert_190456-208686_8TeV_22Jan2013ReReco_Collisions12_JSON.txt": (1002, 2012, 8, "a8fd4964"),
    "Cert_13TeV_16Dec2015ReReco_Collisions15_25ns_JSON_v2.txt": (14210, 2015, 13, "a92efa8b"),
    "Cert_271036-284044_13TeV_Legacy2016_Collisions16_JSON.txt": (14220, 2016, 13, "8690115c"),
}
GOLDEN = {year: name for name, (_, year, _, _) in LUMIMASKS.items()}

# AGC 2015 simulation: cross-sections in pb from S3 utils/file_input.py (xsec_info).
AGC_XSEC = {
    "ttbar": (396.87 + 332.97, "S3 file_input.py: 396.87 + 332.97 (nonallhad + allhad)"),
    "single_top_s_chan": (2.0268 + 1.2676, "S3 file_input.py: 2.0268 + 1.2676"),
    "single_top_t_chan": (
        (36.993 + 22.175) / 0.252,
        "S3 file_input.py: (36.993 + 22.175) / 0.252 (lepton filter scaled to inclusive)",
    ),
    "single_top_tW": (37.936 + 37.906, "S3 file_input.py: 37.936 + 37.906"),
    "wjets": (61457 * 0.252, "S3 file_input.py: 61457 * 0.252 (e/mu + nu final states)"),
}
AGC_TITLES = {
    ("ttbar", "nominal"): "ttbar, Powheg+Pythia8 (ext3 + ext4)",
    ("ttbar", "scaledown"): "ttbar, Powheg+Pythia8, scale down",
    ("ttbar", "scaleup"): "ttbar, Powheg+Pythia8, scale up",
    ("ttbar", "ME_var"): "ttbar, aMC@NLO+Pythia8 (matrix-element variation)",
    ("ttbar", "PS_var"): "ttbar, Powheg+Herwig++ (parton-shower variation)",
    ("single_top_s_chan", "nominal"): "single top, s-channel",
    ("single_top_t_chan", "nominal"): "single top, t-channel (top + antitop)",
    ("single_top_tW", "nominal"): "single top, tW (top + antitop)",
    ("wjets", "nominal"): "W+jets, aMC@NLO (ext2 + ext4)",
}
AGC_HTTPS = "https://xrootd-local.unl.edu:1094//store/user/AGC/nanoAOD/"
AGC_EOS = "root://eospublic.cern.ch//eos/opendata/cms/upload/agc/1.0.0/"  # S3 input_from_eos


def agc_entries(agc_json: Path) -> dict:
    """One catalogue entry per (process, variation) of the AGC NanoAOD inputs."""
    inputs = json.loads(agc_json.read_text())
    out = {}
    for process, variations in inputs.items():
        for variation, info in variations.items():
            files = []
            recids: list[int] = []
            for f in info["files"]:
                url = f["path"]
                if not url.startswith(AGC_HTTPS):
                    raise SystemExit(f"unexpected AGC URL {url}")
                mirror = AGC_EOS + url[len(AGC_HTTPS) :]
                files.append({"url": url, "mirrors": [mirror], "nevents": f["nevts"]})
                recid = int(re.search(rf"cmsopendata2015_{process}_(\d+)_", url).group(1))
                if recid not in recids:
                    recids.append(recid)
            # ttbar has variations; every other AGC process only its nominal sample
            name = f"agc2015_{process}" if process != "ttbar" else f"agc2015_ttbar_{variation}"
            xsec, xsec_source = AGC_XSEC[process]
            xsec = round(xsec, 9)  # drop floating-point noise of the sums
            out[name] = {
                "title": f"AGC 2015 NanoAOD: {AGC_TITLES[(process, variation)]}",
                "record_ids": sorted(recids),
                "year": 2015,
                "sqrts_tev": 13,
                "is_data": False,
                "data_format": "NanoAOD (AGC v1.0.0, from RunIIFall15MiniAODv2 MINIAODSIM)",
                "process": process,
                "variation": variation,
                "xsec_pb": xsec,
                "xsec_source": xsec_source,
                "nevents": info["nevts_total"],
                "nfiles": len(files),
                "treename": "Events",
                "files": files,
                "sources": ["S3"],
                "notes": "record_ids are the MiniAOD source records; https URLs as in the AGC "
                "nanoaod_inputs.json, root:// mirrors by the AGC input_from_eos rule. "
                "S3 docs/taskbackground.rst quotes different cross-sections for single top "
                "and W+jets; file_input.py's are used here.",
            }
    return out


def _rows(md: str, first_cell: str) -> list[list[str]]:
    """Table rows of the markdown whose first cell matches the regular expression."""
    rows = []
    for line in md.splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if re.fullmatch(first_cell, cells[0]):
            rows.append(cells)
    return rows


def data2016_entries(md: str) -> dict:
    """2016 collision NanoAODv9 records (section 1 of the reference)."""
    out = {}
    for recid, pd, era, dataset, events, nfiles, gib, doi in _rows(md, r"305\d\d"):
        vn = "v2" if "**v2**" in dataset else "v1"
        cms = f"/{pd}/Run2016{era}-UL2016_MiniAODv2_NanoAODv9-{vn}/NANOAOD"
        out[f"Run2016{era}_{pd}_NanoAODv9"] = {
            "title": f"{pd}, Run2016{era}, UL2016 NanoAODv9 collision data",
            "record_ids": [int(recid)],
            "doi": f"10.7483/OPENDATA.CMS.{doi}",
            "cms_datasets": [cms],
            "year": 2016,
            "era": era,
            "sqrts_tev": 13,
            "is_data": True,
            "data_format": "NanoAODv9",
            "process": pd,
            "nevents": int(events),
            "nfiles": int(nfiles),
            "treename": "Events",
            "golden_json": GOLDEN[2016],
            "sources": ["S1", "S2"],
            "notes": f"{gib} GiB. File URLs are not in the reference; "
            "run opendata/maintenance/regenerate.py online to list them.",
        }
    return out


def mc2016_entries(md: str) -> dict:
    """2016 UL simulation records with their own table row (section 2 of the reference)."""
    out = {}
    for recid, primary, vn, doi, events, nfiles, gb, xsec in _rows(md, r"(35|6[3-9])\d\d\d"):
        if not events.isdigit():
            continue
        cms = f"/{primary}/RunIISummer20UL16NanoAODv9-106X_mcRun2_asymptotic_v17-{vn}/NANOAODSIM"
        entry = {
            "title": f"{primary}, RunIISummer20UL16 NanoAODv9 simulation",
            "record_ids": [int(recid)],
            "doi": f"10.7483/OPENDATA.CMS.{doi}",
            "cms_datasets": [cms],
            "year": 2016,
            "sqrts_tev": 13,
            "is_data": False,
            "data_format": "NanoAODv9",
            "process": primary,
            "xsec_pb": None,
            "nevents": int(events),
            "nfiles": int(nfiles),
            "treename": "Events",
            "sources": ["S1", "S4"],
            "notes": f"Events and files ({gb} GB) from S4, not verified against the portal. "
            "File URLs are not in the reference; run opendata/maintenance/regenerate.py online.",
        }
        if xsec not in ("–", "-", ""):
            entry["xsec_pb"] = float(xsec)
            entry["xsec_source"] = "S5 (analysis choice, not the portal)"
            entry["sources"].append("S5")
        out[f"UL16NanoAODv9_{primary}"] = entry
    return out


def data2012_entries(md: str) -> dict:
    """2012 derived NanoAOD-format records (section 4 of the reference)."""
    out = {}
    for recid, title, events, nfiles, _size in _rows(md, r"311\d\d"):
        m = re.match(r"(Run2012([BC]))_(\w+?),", title)
        run, era, pd = m.group(1), m.group(2), m.group(3)
        out[f"{run}_{pd}_NanoAODRun1"] = {
            "title": f"{pd}, {run}, NanoAODRun1 (Run 1 NanoAOD-like format)",
            "record_ids": [int(recid)],
            "year": 2012,
            "era": era,
            "sqrts_tev": 8,
            "is_data": True,
            "data_format": "NanoAODRun1",
            "process": pd,
            "nevents": int(events),
            "nfiles": int(nfiles),
            "treename": "Events",
            "golden_json": GOLDEN[2012],
            "certified_at_production": True,
            "sources": ["S1"],
            "notes": "Processed with only the validated runs (S1). File URLs are not in the "
            "reference; run opendata/maintenance/regenerate.py online to list them.",
        }
    ((recid, _title, events, nfiles, size),) = _rows(md, r"12341")
    url = re.search(r"`(root://[^`]+Run2012BC_DoubleMuParked_Muons\.root)`", md).group(1)
    out["Run2012BC_DoubleMuParked_Muons"] = {
        "title": "DoubleMuParked, Run2012B+C, reduced NanoAOD (muons only), single file",
        "record_ids": [int(recid)],
        "year": 2012,
        "era": "BC",
        "sqrts_tev": 8,
        "is_data": True,
        "data_format": "reduced NanoAOD (muons only)",
        "process": "DoubleMuParked",
        "nevents": int(events),
        "nfiles": int(nfiles),
        "treename": "Events",
        "golden_json": GOLDEN[2012],
        "files": [{"url": url, "nevents": int(events)}],
        "sources": ["S1"],
        "notes": f"{size}. Muon branches only: without run/luminosityBlock the golden JSON "
        "cannot be applied to this file.",
    }
    return out


def lumimask_entries(src: Path) -> dict:
    """Facts of each golden JSON, checked against the portal's size and adler32."""
    out = {}
    for name, (recid, year, sqrts, adler) in LUMIMASKS.items():
        blob = (src / name).read_bytes()
        if f"{zlib.adler32(blob):08x}" != adler:
            raise SystemExit(f"{name}: adler32 differs from the portal's {adler}")
        out[name] = {
            "record_id": recid,
            "year": year,
            "sqrts_tev": sqrts,
            "bytes": len(blob),
            "adler32": adler,
            "sha256": hashlib.sha256(blob).hexdigest(),
            "url": f"root://eospublic.cern.ch//eos/opendata/cms/validated-runs/{year}/{name}",
            "sources": ["S1"],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reference", type=Path, help="the opendata-reference folder")
    parser.add_argument("--out", type=Path, default=OPENDATA / "catalogue.json")
    args = parser.parse_args()
    md = (args.reference / "cms_opendata_records.md").read_text()
    datasets: dict = {}
    for part in (
        agc_entries(args.reference / "agc_cms2015_nanoaod_inputs.json"),
        data2016_entries(md),
        mc2016_entries(md),
        data2012_entries(md),
    ):
        clash = datasets.keys() & part.keys()
        if clash:
            raise SystemExit(f"duplicate names: {sorted(clash)}")
        datasets.update(part)
    catalogue = {
        "schema_version": SCHEMA_VERSION,
        "description": "CMS Open Data datasets for jetfm-coffea; every fact cites its source.",
        "sources": SOURCES,
        "lumimasks": lumimask_entries(args.reference / "lumimasks"),
        "datasets": dict(sorted(datasets.items())),
    }
    (OPENDATA / "lumimasks").mkdir(exist_ok=True)
    for name in LUMIMASKS:
        shutil.copyfile(args.reference / "lumimasks" / name, OPENDATA / "lumimasks" / name)
    args.out.write_text(json.dumps(catalogue, indent=1) + "\n")
    print(f"wrote {args.out}: {len(datasets)} datasets, {len(LUMIMASKS)} golden JSONs")


if __name__ == "__main__":
    main()
