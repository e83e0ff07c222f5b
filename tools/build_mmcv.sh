#!/usr/bin/env bash
# Build and install mmcv 2.1.0 with its CPU ops from the sdist into the
# given Python's environment (no binary mmcv is published for recent torch).
#
#   bash tools/build_mmcv.sh PYTHON [SDIST_OR_DIR]
#
# - torch >= 2.14 headers need C++20 ("#error C++20 or later compatible
#   compiler is required to use ATen"); mmcv's setup.py passes -std=c++17:
#   the flag is patched to -std=c++20 before building.
# - The GPU is hidden from the build (CUDA_VISIBLE_DEVICES=, FORCE_CUDA=0):
#   mmcv compiles CUDA ops whenever it sees a GPU, and the WSSS models use
#   none of them.
# - SDIST_OR_DIR: a local mmcv-2.1.0.tar.gz or a folder holding it (offline
#   machines); default: pip downloads it.
# About 13-21 minutes on 2 cores (MAX_JOBS, default 2); a few on 16.
set -euo pipefail
PY="$1"
SRC="${2:-}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [[ -z "$SRC" ]]; then
  "$PY" -m pip download --no-deps --no-binary :all: -d "$WORK" mmcv==2.1.0
  SRC="$WORK"
fi
if [[ -d "$SRC" ]]; then
  SRC="$(ls "$SRC"/mmcv-2.1.0.tar.gz 2>/dev/null | head -n 1)"
  [[ -n "$SRC" ]] || { echo "[build_mmcv] no mmcv-2.1.0.tar.gz in $2" >&2; exit 1; }
fi
tar -xzf "$SRC" -C "$WORK"
cd "$WORK/mmcv-2.1.0"
if "$PY" -c 'import sys, torch; v = tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]); sys.exit(0 if v >= (2, 14) else 1)'; then
  sed -i 's/-std=c++17/-std=c++20/g' setup.py
  grep -q -- '-std=c++20' setup.py || { echo '[build_mmcv] could not patch the C++ standard in setup.py' >&2; exit 1; }
  echo '[build_mmcv] torch >= 2.14: building with -std=c++20'
fi
# the build imports pkg_resources (setuptools<70) and torch (no isolation);
# torch itself wants a newer setuptools, restored afterwards
SETUPTOOLS_NOW="$("$PY" -c 'import setuptools; print(setuptools.__version__)')"
"$PY" -m pip install -q "setuptools<70" wheel
CUDA_VISIBLE_DEVICES= MMCV_WITH_OPS=1 FORCE_CUDA=0 MAX_JOBS="${MAX_JOBS:-2}" \
  "$PY" -m pip install --no-build-isolation --no-deps .
"$PY" -m pip install -q "setuptools==$SETUPTOOLS_NOW" || \
  echo "[build_mmcv] could not restore setuptools $SETUPTOOLS_NOW (offline?): setuptools<70 stays" >&2
"$PY" -c 'import mmcv.ops; print("[build_mmcv] mmcv", __import__("mmcv").__version__, "with ops")'
