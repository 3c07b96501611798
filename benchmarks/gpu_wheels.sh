#!/usr/bin/env bash
# Fill .whl/ with the wheels a GPU machine without network lacks (for benchmarks/gpu_check.sh).
#
# Carries, for CPython 3.12 manylinux x86_64, the exact versions installed in the
# project's virtual environment here (PY, default .venv/bin/python) of every package
# that is not on the machine's image (benchmarks/gpu_preinstalled.txt), without
# torch, the CUDA libraries, development tools, pythia8mc (event generation, 28 MiB: the
# GPU check generates nothing) and bokeh (the dask dashboard). .whl/ is git-ignored (.gitignore);
# it travels with the device call (carry: [".whl"]) and must stay well under 64 MiB.
#
#   benchmarks/gpu_wheels.sh                     # then: du -sh .whl
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=${WHEELS:-.whl}
SKIP_RE='^(torch|triton|nvidia-.*|ruff|pythia8mc|bokeh|jetfm-coffea|ipython.*|ipywidgets|jupyterlab-widgets|widgetsnbextension|jedi|parso|pexpect|ptyprocess|prompt-toolkit|pure-eval|stack-data|asttokens|executing|traitlets|matplotlib-inline|comm|wcwidth)$'
norm() { tr 'A-Z_.' 'a-z--'; }
grep -v '^#' benchmarks/gpu_preinstalled.txt | norm | sort -u > /tmp/jetfm-preinstalled.txt
"$PY" -m pip freeze --exclude-editable 2>/dev/null | grep '==' | while IFS='=' read -r name _ version; do
  n=$(printf '%s' "$name" | norm)
  if grep -qx "$n" /tmp/jetfm-preinstalled.txt || [[ $n =~ $SKIP_RE ]]; then continue; fi
  printf '%s==%s\n' "$name" "${version%%+*}"
done > /tmp/jetfm-wheels.txt
echo "carrying $(wc -l < /tmp/jetfm-wheels.txt) packages: $(tr '\n' ' ' < /tmp/jetfm-wheels.txt)"
mkdir -p "$OUT"
plat=()
for n in 28 27 17 5; do plat+=(--platform "manylinux_2_${n}_x86_64"); done
plat+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${plat[@]}" -d "$OUT" -r /tmp/jetfm-wheels.txt
du -sh "$OUT"
