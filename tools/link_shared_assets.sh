#!/usr/bin/env bash
# Link this project's shared offline assets into the places configs expect:
#   data/coco128_voc                 -> SHARED/data/coco128_voc
#   pretrain/dinov2_vits14_timm.pth  -> SHARED/weights/vit_small_patch14_dinov2_imgfocus_timm.pth
#   pretrain/dinov2_vits14_mmpretrain.pth (converted from it, once .venv exists)
# SHARED defaults to ../shared beside the repository.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$(cd "${1:-$ROOT/../shared}" && pwd)" || {
  echo "no shared folder at ${1:-$ROOT/../shared}" >&2; exit 1; }
cd "$ROOT"
mkdir -p data pretrain
ln -sfn "$SHARED/data/coco128_voc" data/coco128_voc
ln -sfn "$SHARED/weights/vit_small_patch14_dinov2_imgfocus_timm.pth" \
  pretrain/dinov2_vits14_timm.pth
ls -l data/coco128_voc pretrain/dinov2_vits14_timm.pth
# the same DINOv2 weights in mmpretrain's key layout, for the configs that
# use mmpretrain's VisionTransformer (a conversion, not a link)
if [[ -x .venv/bin/python && ! -f pretrain/dinov2_vits14_mmpretrain.pth ]]; then
  .venv/bin/python tools/convert_vit_weights.py \
    pretrain/dinov2_vits14_timm.pth pretrain/dinov2_vits14_mmpretrain.pth \
    --to mmpretrain
fi
