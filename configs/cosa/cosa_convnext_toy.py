# CoSA on the synthetic set with a small hierarchical backbone (mmpretrain
# ConvNeXt, from scratch): cosa_tiny_toy.py with the backbone, heads and
# decoder of cam_convnext_toy.py, so CoSA / CAM x ViT / ConvNeXt compare
# directly (same schedule and seed):
#   python tools/train.py configs/cosa/cosa_convnext_toy.py
_base_ = ['./cosa_tiny_toy.py', '../_base_/models/convnext_toy_parts.py']
model = dict(
    backbone={{_base_.convnext_toy_backbone}},
    cam_head=dict(in_channels=192),
    aux_cam_head=dict(in_channels=96),
    decode_head={{_base_.convnext_toy_decode}})
