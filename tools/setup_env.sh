#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtual environment `.venv` with everything mmseg-wsss needs.
# Idempotent: a second run with unchanged requirements returns in about a second.
#
#   bash tools/setup_env.sh            # runtime + test requirements
#
# Environment variables:
#   WSSS_VENV      where the environment lives (default: <repo>/.venv)
#   WSSS_PYTHON    the interpreter used to create it (default: python3)
#   WSSS_TORCH     pip requirement(s) for torch when the environment has none
#                  (default: "torch==2.14.1 torchvision==0.29.1"; e.g. WSSS_TORCH=torch==2.13.0
#                  for the CPU-only build without torchvision: mmpretrain and timm are then
#                  left out and their tests are reported as skipped)
#   WSSS_WHEELS    a folder of prebuilt mmcv wheels (default: ../shared/wheels beside the repo,
#                  when present; torch-<version>/ subfolders hold the wheel for that torch)
#
# A project environment (.venv made by this script) whose torch requirement
# changed is rebuilt from scratch, so torch, torchvision and mmcv always move
# together; an environment you made yourself (WSSS_VENV) keeps its torch.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${WSSS_VENV:-$ROOT/.venv}"
PY="${WSSS_PYTHON:-python3}"
TORCH_REQ="${WSSS_TORCH:-torch==2.14.1 torchvision==0.29.1}"
WHEELS="${WSSS_WHEELS:-$ROOT/../shared/wheels}"

step() { printf '\n[setup] %s\n' "$*"; }
fail() { printf '\n[setup] FAILED: %s\n' "$*" >&2; exit 1; }

# Everything that decides the environment's content goes into the stamp.
STAMP_SRC="$(cat "$ROOT/setup.py" "$ROOT/requirements/"*.txt "$0" "$ROOT/tools/build_mmcv.sh"; echo "$TORCH_REQ")"
STAMP="$(printf '%s' "$STAMP_SRC" | sha1sum | cut -d' ' -f1)"
if [[ -f "$VENV/.wsss_stamp" && "$(cat "$VENV/.wsss_stamp")" == "$STAMP" ]] \
   && "$VENV/bin/python" -c 'import mmseg_wsss' 2>/dev/null; then
  echo "[setup] environment $VENV is up to date"
  exit 0
fi

# our own environment, made for another torch requirement: rebuild it
# (upgrading torch alone would strand torchvision and mmcv's compiled ops)
# (only an environment this script created: .wsss_created, or the project's
# own .venv from before that marker existed, made for torch==2.13.0)
if [[ -f "$VENV/.wsss_created" ]] || [[ "$VENV" == "$ROOT/.venv" && -f "$VENV/.wsss_stamp" ]]; then
  MADE_FOR="$(cat "$VENV/.wsss_torch" 2>/dev/null || echo 'torch==2.13.0')"
  if [[ "$MADE_FOR" != "$TORCH_REQ" ]]; then
    step "rebuilding $VENV: it was made for '$MADE_FOR', now '$TORCH_REQ'"
    rm -rf "$VENV"
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  step "creating virtual environment $VENV"
  command -v "$PY" >/dev/null || fail "no '$PY' on PATH; install Python 3.8+ or set WSSS_PYTHON"
  "$PY" -m venv "$VENV" || fail "'$PY -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)"
  touch "$VENV/.wsss_created"
fi
VPY="$VENV/bin/python"
PIP=("$VPY" -m pip install --disable-pip-version-check)

step "build tools"
"${PIP[@]}" -q wheel || fail "could not install wheel"

if "$VPY" -c 'import torch' 2>/dev/null; then
  step "torch already present: $("$VPY" -c 'import torch; print(torch.__version__)') (left untouched)"
else
  step "installing $TORCH_REQ"
  # shellcheck disable=SC2086  (several requirements in one variable)
  "${PIP[@]}" $TORCH_REQ || fail "could not install $TORCH_REQ (set WSSS_TORCH to a torch build that suits this machine)"
  echo "$TORCH_REQ" > "$VENV/.wsss_torch"
fi
TORCH_V="$("$VPY" -c 'import torch; print(torch.__version__.split("+")[0])')"

if "$VPY" -c 'import mmcv, mmcv.ops' 2>/dev/null; then
  step "mmcv with ops already present: $("$VPY" -c 'import mmcv; print(mmcv.__version__)')"
else
  PYTAG="cp$("$VPY" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')"
  # a prebuilt wheel is bound to the torch it was built against (its ops
  # link torch's C++ ABI): the top-level wheel is for torch 2.13.0+cpu,
  # torch-<version>/ holds the one for that torch
  WHEEL_DIR=""
  if [[ "$TORCH_V" == 2.13.0 ]]; then WHEEL_DIR="$WHEELS"; else WHEEL_DIR="$WHEELS/torch-$TORCH_V"; fi
  if compgen -G "$WHEEL_DIR/mmcv-2.1.0-$PYTAG-*.whl" >/dev/null; then
    step "installing mmcv 2.1.0 from the prebuilt wheel in $WHEEL_DIR (built for torch $TORCH_V)"
    "${PIP[@]}" --find-links "$WHEEL_DIR" "mmcv==2.1.0" \
      || fail "the prebuilt mmcv wheel in $WHEEL_DIR did not install"
  else
    step "building mmcv 2.1.0 from source with ops for torch $TORCH_V (about 13-21 minutes on 2 cores; see tools/build_mmcv.sh)"
    bash "$ROOT/tools/build_mmcv.sh" "$VPY" \
      || fail "mmcv 2.1.0 did not build; see the output above (it needs gcc and the Python headers)"
  fi
  "$VPY" -c 'import mmcv.ops' || fail "mmcv installed without its compiled ops; remove it and rerun"
fi

step "mmengine, mmsegmentation and the rest (requirements/runtime.txt, requirements/tests.txt)"
"${PIP[@]}" -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" \
  || fail "could not install the requirements"

# mmpretrain (its backbones) and timm (TIMMBackbone) need torchvision: install
# them only beside one, pinned to the torch/torchvision present so that pip
# never swaps torch underneath (timm pulls torchvision, which pins torch)
if "$VPY" -c 'import torchvision' 2>/dev/null; then
  step "mmpretrain and timm (requirements/optional.txt), torch and torchvision pinned"
  PINS="$(mktemp)"
  # the installed distributions' versions (torch.__version__ may carry a
  # local suffix, e.g. +cu130, that the package metadata does not)
  "$VPY" -c 'from importlib.metadata import version
for name in ("torch", "torchvision"):
    print(name + "==" + version(name))' > "$PINS"
  "${PIP[@]}" -r "$ROOT/requirements/optional.txt" -c "$PINS" \
    || fail "could not install mmpretrain/timm beside torch $TORCH_V"
  rm -f "$PINS"
else
  step "no torchvision beside torch $TORCH_V: mmpretrain and timm left out (their tests are skipped)"
fi

step "mmseg-wsss itself (editable)"
"${PIP[@]}" --no-build-isolation --no-deps -e "$ROOT" || fail "could not install the package"
"$VPY" -c 'import mmseg_wsss, mmseg.models' || fail "the package does not import; see the traceback above"

echo "$STAMP" > "$VENV/.wsss_stamp"
step "done: $("$VPY" -c '
import torch, mmcv, mmengine, mmseg
extra = []
for name in ("torchvision", "mmpretrain", "timm"):
    try:
        extra.append(f"{name} {__import__(name).__version__}")
    except Exception:
        pass
print(", ".join([f"torch {torch.__version__}", f"mmcv {mmcv.__version__}", f"mmengine {mmengine.__version__}", f"mmseg {mmseg.__version__}"] + extra))')"
