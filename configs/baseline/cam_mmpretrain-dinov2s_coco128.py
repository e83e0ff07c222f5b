# cam_dinov2s_coco128.py with DINOv2-S/14 through mmpretrain's
# VisionTransformer instead of WSSSViT (same weights, same everything else):
#   python tools/convert_vit_weights.py pretrain/dinov2_vits14_timm.pth \
#       pretrain/dinov2_vits14_mmpretrain.pth --to mmpretrain
#   python tools/train.py configs/baseline/cam_mmpretrain-dinov2s_coco128.py
# (or init_cfg.checkpoint = mmpretrain's own release, https://download.
# openmmlab.com/mmpretrain/v1.0/dinov2/vit-small-p14_dinov2-pre_3rdparty_
# 20230426-5641ca5a.pth). Frozen like the WSSSViT config: frozen_stages=12.
_base_ = [
    './cam_dinov2s_coco128.py',
    '../_base_/models/dinov2s_mmpretrain_backbone.py'
]
model = dict(backbone={{_base_.dinov2s_mmpretrain}})
