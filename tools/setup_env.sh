#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtual environment `.venv` with everything mmseg-wsss needs.
# Idempotent: a second run with unchanged requirements returns in about a second.
#
#   bash tools/setup_env.sh            # runtime + test requirements
#
# Environment variables:
#   WSSS_VENV      where the environment lives (default: <repo>/.venv)
#   WSSS_PYTHON    the interpreter used to create it (default: python3)
#   WSSS_TORCH     pip requirement for torch when the environment has none (default: torch==2.13.0)
#   WSSS_WHEELS    a folder of prebuilt wheels (default: ../shared/wheels beside the repo, when present)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WSSS_VENV:-$ROOT/.venv}"
PY="${WSSS_PYTHON:-python3}"
TORCH_REQ="${WSSS_TORCH:-torch==2.13.0}"
WHEELS="${WSSS_WHEELS:-$ROOT/../shared/wheels}"

step() { printf '\n[setup] %s\n' "$*"; }
fail() { printf '\n[setup] FAILED: %s\n' "$*" >&2; exit 1; }

# Everything that decides the environment's content goes into the stamp.
STAMP_SRC="$(cat "$ROOT/setup.py" "$ROOT/requirements/"*.txt "$0"; echo "$TORCH_REQ")"
STAMP="$(printf '%s' "$STAMP_SRC" | sha1sum | cut -d' ' -f1)"
if [[ -f "$VENV/.wsss_stamp" && "$(cat "$VENV/.wsss_stamp")" == "$STAMP" ]] \
   && "$VENV/bin/python" -c 'import mmseg_wsss' 2>/dev/null; then
  echo "[setup] environment $VENV is up to date"
  exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  step "creating virtual environment $VENV"
  command -v "$PY" >/dev/null || fail "no '$PY' on PATH; install Python 3.8+ or set WSSS_PYTHON"
  "$PY" -m venv "$VENV" || fail "'$PY -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install --disable-pip-version-check)

step "build tools"
"${PIP[@]}" -q wheel || fail "could not install wheel"

if "$VPY" -c 'import torch' 2>/dev/null; then
  step "torch already present: $("$VPY" -c 'import torch; print(torch.__version__)') (left untouched)"
else
  step "installing $TORCH_REQ"
  "${PIP[@]}" "$TORCH_REQ" || fail "could not install $TORCH_REQ (set WSSS_TORCH to a torch build that suits this machine)"
fi

if "$VPY" -c 'import mmcv, mmcv.ops' 2>/dev/null; then
  step "mmcv with ops already present: $("$VPY" -c 'import mmcv; print(mmcv.__version__)')"
else
  PYTAG="cp$("$VPY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
  TORCH_V="$("$VPY" -c 'import torch; print(torch.__version__)')"
  # the shared wheel was built against torch 2.13.0+cpu (its ops are ABI-bound)
  if [[ "$TORCH_V" == 2.13.0* ]] && compgen -G "$WHEELS/mmcv-2.1.0-$PYTAG-*.whl" >/dev/null; then
    step "installing mmcv 2.1.0 from the prebuilt wheel in $WHEELS"
    "${PIP[@]}" --find-links "$WHEELS" "mmcv==2.1.0" \
      || fail "the prebuilt mmcv wheel in $WHEELS did not install"
  else
    step "building mmcv 2.1.0 from source with ops (about 13 minutes on 2 cores; pip caches the wheel)"
    # the build imports pkg_resources (setuptools<70) and torch (hence no
    # build isolation); torch itself wants a newer setuptools, restored after
    SETUPTOOLS_NOW="$("$VPY" -c 'import setuptools; print(setuptools.__version__)')"
    "${PIP[@]}" -q "setuptools<70" || fail "could not install setuptools<70"
    MMCV_WITH_OPS=1 FORCE_CUDA="${FORCE_CUDA:-0}" MAX_JOBS="${MAX_JOBS:-2}" \
      "${PIP[@]}" --no-build-isolation "mmcv==2.1.0" \
      || fail "mmcv 2.1.0 did not build; see the pip output above (it needs gcc and the Python headers)"
    "${PIP[@]}" -q "setuptools==$SETUPTOOLS_NOW" \
      || fail "could not restore setuptools $SETUPTOOLS_NOW"
  fi
  "$VPY" -c 'import mmcv.ops' || fail "mmcv installed without its compiled ops; remove it and rerun"
fi

step "mmengine, mmsegmentation and the rest (requirements/runtime.txt, requirements/tests.txt)"
"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
  || fail "could not install the requirements"

step "mmseg-wsss itself (editable)"
"${PIP[@]}" --no-build-isolation --no-deps -e "$ROOT" || fail "could not install the package"
"$VPY" -c 'import mmseg_wsss, mmseg.models' || fail "the package does not import; see the traceback above"

echo "$STAMP" > "$VENV/.wsss_stamp"
step "done: $("$VPY" -c 'import torch, mmcv, mmengine, mmseg; print(f"torch {torch.__version__}, mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmseg {mmseg.__version__}")')"
