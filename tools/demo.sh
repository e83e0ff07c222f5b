#!/usr/bin/env bash
# The demo: set up .venv, make the synthetic VOC-layout set, train CoSA
# with the stock mmengine Runner, evaluate it and draw CAM pictures.
#   bash tools/demo.sh                # everything under work_dirs/demo
#   CONFIG=... WORK_DIR=... bash tools/demo.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CONFIG="${CONFIG:-configs/cosa/cosa_tiny_toy.py}"
WORK_DIR="${WORK_DIR:-work_dirs/demo}"
PY=.venv/bin/python
say() { printf '\n[demo] %s\n' "$*"; }

bash tools/setup_env.sh
say "1/4 synthetic dataset -> data/toy_voc"
$PY tools/make_toy_voc.py data/toy_voc
say "2/4 training $CONFIG (CPU, a few minutes; log in $WORK_DIR)"
$PY tools/train.py "$CONFIG" --work-dir "$WORK_DIR"
CKPT="$(cat "$WORK_DIR/last_checkpoint")"
say "3/4 evaluating $CKPT on the val set"
$PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK_DIR/test" \
  --out "$WORK_DIR/test/pred_masks"
say "4/4 CAM / pseudo-label / prediction pictures"
$PY tools/vis_cam.py "$CONFIG" "$CKPT" --split train --num 6 \
  --out "$WORK_DIR/pictures/train"
$PY tools/vis_cam.py "$CONFIG" "$CKPT" --split val --num 6 \
  --out "$WORK_DIR/pictures/val"

LOG="$(ls -t "$WORK_DIR"/*/*.log | head -n 1)"  # the newest run
say "done. Validation history (val seg mIoU, train-set CAM pseudo-mask mIoU):"
grep -E "Iter\(val\).*mIoU" "$LOG" | sed -E \
  's/.*Iter\(val\) \[[0-9]+\/[0-9]+\] +aAcc: [0-9.]+ +mIoU: ([0-9.]+).*label_masked\/mIoU: ([0-9.]+).*train\/cam\/mIoU: ([0-9.]+).*train\/cam\/bg_thr: ([0-9.]+).*/  seg mIoU \1  label-masked \2  CAM mIoU \3 (bg thr \4)/' || true
cat <<MSG

  training log     $LOG
  checkpoint       $CKPT
  test metrics     $WORK_DIR/test/
  predicted masks  $WORK_DIR/test/pred_masks/
  pictures         $WORK_DIR/pictures/{train,val}/summary.png
  training panels  $(dirname "$LOG")/vis_data/vis_image/cam_panels_*.png (every 300 iterations)
MSG
