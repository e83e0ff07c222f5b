#!/usr/bin/env bash
# Gather what an offline CUDA machine needs to run this project, as files:
#
#   bash tools/make_wheelhouse.sh [--python-version 3.12] [--out wheelhouse]
#                                 [--all-deps] [--dry-run]
#
# Run it where a package index is reachable; carry the folder to the GPU
# machine and install from it with tools/gpu_check.sh --wheelhouse DIR.
#
# What goes in (default, for the H200 box of the device tool: Python 3.12
# with torch 2.11, torchvision, timm, numpy, scipy, matplotlib, opencv,
# rich, regex, pyyaml, einops, cython preinstalled):
#   - wheels of mmengine 0.10.7, mmsegmentation 1.2.2, mmpretrain 1.2.0 and
#     the dependencies of theirs (and of this project) that box lacks:
#     addict, yapf, platformdirs, termcolor, prettytable, wcwidth, ftfy,
#     mat4py, modelindex, ordered-set, importlib-metadata;
#   - setuptools<70 and wheel (mmcv's setup.py imports pkg_resources);
#   - the mmcv 2.1.0 sdist (no binary wheel exists for recent torch; it is
#     built there with the GPU hidden, see tools/build_mmcv.sh).
# --all-deps lets pip resolve every dependency instead (bigger: opencv,
# matplotlib, numpy ... for a box that has none of them).
# Building the wheelhouse needs the index: a manual step, not a test.
set -euo pipefail
PYV=3.12
OUT=wheelhouse
ALL_DEPS=0
DRY=0
usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --python-version) PYV="${2:?--python-version needs a value}"; shift 2 ;;
    --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
    --all-deps) ALL_DEPS=1; shift ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage ;;
    *) echo "make_wheelhouse: unknown argument $1" >&2; usage ;;
  esac
done
[[ "$PYV" =~ ^3\.[0-9]+$ ]] || { echo "make_wheelhouse: --python-version must look like 3.12, got $PYV" >&2; exit 2; }
PY="${PYTHON:-python3}"
TAG="${PYV/./}"
MAIN=(mmengine==0.10.7 mmsegmentation==1.2.2 mmpretrain==1.2.0)
MISSING=(addict yapf platformdirs termcolor prettytable wcwidth ftfy mat4py
         modelindex ordered-set importlib-metadata zipp)
BUILD=("setuptools<70" wheel)
PLATFORM=(--python-version "$PYV" --implementation cp --abi "cp$TAG"
          --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64
          --platform any --only-binary=:all:)
run() { echo "+ $*"; [[ $DRY == 1 ]] || "$@"; }
run mkdir -p "$OUT"
if [[ $ALL_DEPS == 1 ]]; then
  run "$PY" -m pip download -d "$OUT" "${PLATFORM[@]}" "${MAIN[@]}" "${MISSING[@]}" "${BUILD[@]}"
else
  run "$PY" -m pip download -d "$OUT" "${PLATFORM[@]}" --no-deps "${MAIN[@]}" "${MISSING[@]}" "${BUILD[@]}"
fi
# pip runs the sdist's setup.py to read its metadata, and that imports
# pkg_resources: download it from a throw-away venv with setuptools<70
TMPV="$(mktemp -d)"
trap 'rm -rf "$TMPV"' EXIT
run "$PY" -m venv "$TMPV/venv"
run "$TMPV/venv/bin/python" -m pip install -q "setuptools<70" wheel
run "$TMPV/venv/bin/python" -m pip download -d "$OUT" --no-deps --no-binary :all: --no-build-isolation mmcv==2.1.0
if [[ $DRY == 0 ]]; then
  ls -l "$OUT"
  echo "[make_wheelhouse] $(ls "$OUT" | wc -l) files, $(du -sh "$OUT" | cut -f1) in $OUT (Python $PYV)"
fi
