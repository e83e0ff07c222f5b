# CAM baseline on the synthetic set with a small hierarchical backbone
# (mmpretrain ConvNeXt, from scratch) instead of the tiny ViT; same data,
# schedule and seed as cam_tiny_toy.py, so the two compare directly:
#   python tools/train.py configs/baseline/cam_convnext_toy.py
_base_ = [
    '../_base_/models/cam_convnext-toy.py', '../_base_/datasets/toy_wsss.py',
    '../_base_/schedules/adamw_toy.py', '../_base_/default_runtime.py'
]
custom_hooks = [dict(type='CAMVisualizationHook', interval=300)]
