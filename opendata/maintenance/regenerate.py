"""Refresh ``opendata/catalogue.json`` from the CERN Open Data portal (maintainers, online).

For every catalogue dataset whose facts come from the portal, this asks
``cernopendata-client`` (``pip install cernopendata-client``) for each record's metadata
(``distribution.number_events`` / ``number_files``) and file locations, then rewrites
``nevents``, ``nfiles`` and ``files`` (xrootd URLs first, the portal's http(s) URLs as
mirrors). AGC entries (source S3) are refreshed from the AGC ``nanoaod_inputs.json`` when
``--agc-json`` is given. The result is validated against the schema before it is written.

It needs internet access and is never imported by jetfm-coffea at run time. It could not be
run when it was written (no network there), so review the diff before committing.

Usage::

    python opendata/maintenance/regenerate.py --dry-run
    python opendata/maintenance/regenerate.py --only Run2016H_SingleMuon_NanoAODv9
    python opendata/maintenance/regenerate.py --agc-json path/to/nanoaod_inputs.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CATALOGUE = HERE.parent / "catalogue.json"
CLIENT = "cernopendata-client"


def client(*args: str) -> str:
    """Run cernopendata-client and return its standard output."""
    done = subprocess.run([CLIENT, *args], check=True, capture_output=True, text=True)
    return done.stdout


def record_metadata(recid: int) -> dict:
    """The record's metadata JSON as the portal serves it."""
    return json.loads(client("get-metadata", "--recid", str(recid)))


def file_locations(recid: int, protocol: str) -> list[str]:
    """URLs of the record's ROOT files (file indexes expanded, index files dropped)."""
    out = client("get-file-locations", "--recid", str(recid), "--protocol", protocol)
    return [u.strip() for u in out.splitlines() if u.strip().endswith(".root")]


def _path_key(url: str) -> str:
    """The /eos/... part of a URL, to pair xrootd and http(s) locations of one file."""
    return url[url.find("/eos/") :] if "/eos/" in url else url


def refresh_portal_entry(entry: dict) -> dict:
    """Events, files and file URLs of a portal-sourced entry, summed over its records."""
    nevents = nfiles = 0
    files: list[dict] = []
    for recid in entry["record_ids"]:
        dist = record_metadata(recid).get("distribution", {})
        nevents += int(dist.get("number_events", 0))
        nfiles += int(dist.get("number_files", 0))
        roots = file_locations(recid, "xrootd")
        https = {_path_key(u): u for u in file_locations(recid, "http")}
        for url in roots:
            mirror = https.get(_path_key(url))
            files.append({"url": url, **({"mirrors": [mirror]} if mirror else {})})
    new = dict(entry, nevents=nevents, nfiles=len(files) or nfiles)
    if files:
        new["files"] = files
        if len(files) != nfiles:
            print(f"  note: {len(files)} ROOT files listed, metadata says {nfiles}")
    return new


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalogue", type=Path, default=CATALOGUE)
    parser.add_argument("--only", action="append", default=[], help="Refresh only this name.")
    parser.add_argument("--agc-json", type=Path, help="AGC nanoaod_inputs.json to refresh from.")
    parser.add_argument("--dry-run", action="store_true", help="Report changes, write nothing.")
    args = parser.parse_args()
    if shutil.which(CLIENT) is None:
        print(f"{CLIENT} not found: pip install cernopendata-client", file=sys.stderr)
        return 2
    catalogue = json.loads(args.catalogue.read_text())
    datasets = catalogue["datasets"]
    if args.agc_json:
        sys.path.insert(0, str(HERE))
        from from_reference import agc_entries  # sibling maintenance script

        for name, entry in agc_entries(args.agc_json).items():
            if not args.only or name in args.only:
                datasets[name] = entry
    for name, entry in datasets.items():
        if args.only and name not in args.only:
            continue
        if "S1" not in entry["sources"]:
            continue  # not a portal record (AGC samples, see --agc-json)
        print(f"{name}: records {entry['record_ids']}")
        new = refresh_portal_entry(entry)
        for key in ("nevents", "nfiles"):
            if new[key] != entry[key]:
                print(f"  {key}: {entry[key]} -> {new[key]}")
        if len(new.get("files", [])) != len(entry.get("files", [])):
            print(f"  files listed: {len(entry.get('files', []))} -> {len(new.get('files', []))}")
        datasets[name] = new

    sys.path.insert(0, str(HERE.parents[1]))
    from jetfm_coffea.opendata.catalogue import Catalogue

    Catalogue.from_document(catalogue)  # schema + cross-reference checks
    if not args.dry_run:
        args.catalogue.write_text(json.dumps(catalogue, indent=1) + "\n")
        print(f"wrote {args.catalogue}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
