#!/usr/bin/env bash
# One-command GPU check on an offline CUDA machine (about 8 minutes of GPU).
#
#   here (with a package index):   bash tools/gpu_check.sh --pack
#   there (CUDA, no index):        bash tools/gpu_check.sh [--out DIR]
#
# --pack makes gpu_pack/ (git-ignored, ~60 MB): the wheelhouse of
# tools/make_wheelhouse.sh, the DINOv2-S/14 weights in float16 and the
# coco128 photos re-encoded at <= 512 px (never commit them). On the GPU
# machine, from the repository root with gpu_pack/ beside the code:
#   1. install: every wheel of gpu_pack/wheelhouse (--no-deps, no index),
#      mmcv 2.1.0 built from its sdist with the GPU hidden from the build
#      (tools/build_mmcv.sh: CPU ops only, -std=c++20 for torch >= 2.14),
#      this project (-e, no deps); skipped for what already imports;
#   2. bench: tools/benchmark.py at 448x448, batch 4, on cuda: the ViT-B/16
#      CAM baseline and CoSA (VOC configs) and the hierarchical-backbone
#      CoSA (Swin-B) -- s/iteration, peak memory, measured / ideal ratio;
#      WeCLIP and ExCEL at their size (crop 320, batch 4);
#   3. coco128: the CAM baseline vs CoSA with a trainable DINOv2-S/14
#      (configs/*/*_dinov2s_coco128_gpu.py), --iters iterations each:
#      pseudo-mask and seg mIoU.
# Results: DIR/summary.json, the benchmark JSONs and the training logs
# (DIR defaults to $OUT when set, else work_dirs/gpu_check).
#
# Options: --pack-dir DIR (default gpu_pack), --out DIR, --iters N (300),
#   --only install|bench|coco (repeatable), --python PY (default python3),
#   --dry-run (print the steps, run nothing), -h.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PACK=gpu_pack
OUTDIR="${OUT:-work_dirs/gpu_check}"
ITERS=300
ONLY=()
PY="${PYTHON:-python3}"
DRY=0
DO_PACK=0
usage() { sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --pack) DO_PACK=1; shift ;;
    --pack-dir) PACK="${2:?--pack-dir needs a folder}"; shift 2 ;;
    --out) OUTDIR="${2:?--out needs a folder}"; shift 2 ;;
    --iters) ITERS="${2:?--iters needs a number}"; shift 2 ;;
    --only) ONLY+=("${2:?--only needs install, bench or coco}"); shift 2 ;;
    --python) PY="${2:?--python needs an interpreter}"; shift 2 ;;
    --dry-run) DRY=1; shift ;;
    -h|--help) usage ;;
    *) echo "gpu_check: unknown argument $1" >&2; usage ;;
  esac
done
[[ "$ITERS" =~ ^[1-9][0-9]*$ ]] || { echo "gpu_check: --iters must be a positive integer, got $ITERS" >&2; exit 2; }
for s in "${ONLY[@]:-}"; do
  [[ -z "$s" || "$s" =~ ^(install|bench|coco)$ ]] || { echo "gpu_check: --only takes install, bench or coco, got $s" >&2; exit 2; }
done
want() { [[ ${#ONLY[@]} -eq 0 ]] || [[ " ${ONLY[*]} " == *" $1 "* ]]; }
say() { echo "[gpu_check] $*"; }
run() { echo "+ $*"; [[ $DRY == 1 ]] || "$@"; }

# ------------------------------------------------------------------ pack
if [[ $DO_PACK == 1 ]]; then
  [[ -e pretrain/dinov2_vits14_timm.pth && -d data/coco128_voc ]] || {
    echo "gpu_check --pack: needs pretrain/dinov2_vits14_timm.pth and data/coco128_voc (bash tools/link_shared_assets.sh)" >&2; exit 1; }
  run bash tools/make_wheelhouse.sh --python-version 3.12 --out "$PACK/wheelhouse"
  run "$PY" tools/gpu_pack_assets.py pretrain/dinov2_vits14_timm.pth data/coco128_voc "$PACK"
  [[ $DRY == 1 ]] || say "packed: $(du -sh "$PACK" | cut -f1) in $PACK; carry it to the GPU machine beside the code"
  exit 0
fi

mkdir -p "$OUTDIR"
# the project is used from this checkout, not installed: an offline
# `pip install -e .` fails with setuptools >= 70 (its develop command asks
# pip for an isolated build, which needs the index)
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
# ------------------------------------------------------------------ install
if want install; then
  WH="$PACK/wheelhouse"
  [[ $DRY == 1 || -d "$WH" ]] || { echo "gpu_check: no wheelhouse at $WH; make it where a package index is reachable: bash tools/gpu_check.sh --pack" >&2; exit 1; }
  run "$PY" -c 'import torch; print("[gpu_check] torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)'
  # offline from here on: pip never looks for an index
  export PIP_NO_INDEX=1 PIP_FIND_LINKS="$ROOT/$WH" PIP_DISABLE_PIP_VERSION_CHECK=1
  if [[ $DRY == 1 ]] || ! "$PY" -c 'import mmengine, mmseg, mmpretrain, addict, yapf, ftfy, prettytable' 2>/dev/null; then
    # --no-deps: the wheelhouse holds exactly what the machine lacks, and
    # mmengine's opencv-python requirement is met by opencv-python-headless
    run "$PY" -m pip install -q --no-deps $(ls "$WH"/*.whl 2>/dev/null | grep -v -e '/setuptools-' -e '/wheel-' || echo "$WH/*.whl")
  fi
  if [[ $DRY == 1 ]] || ! "$PY" -c 'import mmcv.ops' 2>/dev/null; then
    run env MAX_JOBS="$(nproc)" bash tools/build_mmcv.sh "$PY" "$WH"
  fi
  run "$PY" -c 'import mmseg_wsss, mmseg, mmcv, mmengine; print("[gpu_check] mmseg_wsss imports: mmcv", mmcv.__version__, "mmseg", mmseg.__version__, "mmengine", mmengine.__version__)'
fi

# ------------------------------------------------------------------ assets
if want coco; then
  run mkdir -p pretrain data
  if [[ ! -s pretrain/dinov2_vits14_timm.pth ]]; then
    run "$PY" tools/gpu_pack_assets.py --unpack "$PACK" pretrain/dinov2_vits14_timm.pth
  fi
  [[ -e data/coco128_voc ]] || run ln -sfn "$ROOT/$PACK/coco128_voc" data/coco128_voc
fi

# ------------------------------------------------------------------ bench
BENCH_CONFIGS=(configs/baseline/cam_vitb_voc.py configs/cosa/cosa_vitb_voc.py configs/cosa/cosa_swin-b_voc.py)
CLIP_BENCH_CONFIGS=(configs/weclip/weclip_vitb16_voc.py configs/excel/excel_vitb16_voc.py)
if want bench; then
  for cfg in "${BENCH_CONFIGS[@]}"; do
    name="$(basename "$cfg" .py)"
    run timeout 240 "$PY" tools/benchmark.py "$cfg" --device cuda --batch-size 4 \
      --crop-size 448 448 --steps 10 --warmup 3 --infer-images 5 \
      --out "$OUTDIR/bench_$name.json" || say "benchmark of $cfg failed (see above)"
  done
  # the CLIP line at its real size: frozen ViT-B/16, crop 320, batch 4
  # (random CLIP weights and text rows: timing needs none)
  for cfg in "${CLIP_BENCH_CONFIGS[@]}"; do
    name="$(basename "$cfg" .py)"
    run timeout 240 "$PY" tools/benchmark.py "$cfg" --device cuda --batch-size 4 \
      --crop-size 320 320 --steps 10 --warmup 3 --infer-images 5 \
      --out "$OUTDIR/bench_$name.json" || say "benchmark of $cfg failed (see above)"
  done
fi

# ------------------------------------------------------------------ coco128
if want coco; then
  for cfg in configs/baseline/cam_dinov2s_coco128_gpu.py configs/cosa/cosa_dinov2s_coco128_gpu.py; do
    name="$(basename "$cfg" .py)"
    say "training $cfg for $ITERS iterations -> $OUTDIR/$name.log"
    run timeout 420 "$PY" tools/train.py "$cfg" --work-dir "$OUTDIR/$name" \
      --cfg-options train_cfg.max_iters="$ITERS" train_cfg.val_interval="$ITERS" \
      model.train_cfg.warmup_iters="$((ITERS * 2 / 3))" \
      "param_scheduler.1.end=$ITERS" default_hooks.checkpoint.interval="$ITERS" \
      > "$OUTDIR/$name.log" 2>&1 || say "training $cfg failed: tail of $OUTDIR/$name.log:"
    [[ $DRY == 1 ]] || tail -n 3 "$OUTDIR/$name.log"
  done
fi

[[ $DRY == 1 ]] || run "$PY" tools/gpu_pack_assets.py --summary "$OUTDIR"
