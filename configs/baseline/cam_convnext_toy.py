# CAM baseline on the synthetic set with a small hierarchical backbone
# (mmpretrain ConvNeXt, from scratch) instead of the tiny ViT; same data,
# schedule and seed as cam_tiny_toy.py, so the two compare directly:
#   python tools/train.py configs/baseline/cam_convnext_toy.py
_base_ = ['./cam_tiny_toy.py', '../_base_/models/convnext_toy_parts.py']
model = dict(
    backbone={{_base_.convnext_toy_backbone}},
    cam_head=dict(in_channels=192),
    aux_cam_head=dict(in_channels=96),
    decode_head={{_base_.convnext_toy_decode}})
