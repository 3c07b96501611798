#!/usr/bin/env bash
# Copy the real CMS test files that benchmarks/gpu_check.sh needs into .testdata/cms/
# (git-ignored; carried with the device call, ~6 MiB). Source: JETFM_TESTDATA or ../shared/testdata.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${JETFM_TESTDATA:-../shared/testdata}
mkdir -p .testdata/cms
for f in Run2012B_SingleMu_10000.root nanoAOD_2015_CMS_Open_Data_ttbar.root NanoAODv5_ttbar_1000.root; do
  cp "$SRC/cms/$f" .testdata/cms/
done
du -sh .testdata
