# CAM baseline on the synthetic set, trains on CPU in a few minutes:
#   python tools/make_toy_voc.py data/toy_voc
#   python tools/train.py configs/baseline/cam_tiny_toy.py
_base_ = [
    '../_base_/models/cam_vit-tiny.py', '../_base_/datasets/toy_wsss.py',
    '../_base_/schedules/adamw_toy.py', '../_base_/default_runtime.py'
]
# CAM / pseudo-label / prediction panels of 4 val images every 300
# iterations (work_dir/<timestamp>/vis_data/vis_image/; add
# dict(type='TensorboardVisBackend') to visualizer.vis_backends for
# TensorBoard)
custom_hooks = [dict(type='CAMVisualizationHook', interval=300)]
