# cosa_dinov2s_coco128.py with DINOv2-S/14 through mmpretrain's
# VisionTransformer (weights: see
# configs/baseline/cam_mmpretrain-dinov2s_coco128.py):
#   python tools/train.py configs/cosa/cosa_mmpretrain-dinov2s_coco128.py
_base_ = [
    './cosa_dinov2s_coco128.py',
    '../_base_/models/dinov2s_mmpretrain_backbone.py'
]
model = dict(backbone={{_base_.dinov2s_mmpretrain}})
