# CAM baseline on COCO 2014 with ViT-B/16: 60k iterations, total batch 8
# (4 GPUs x 2), warm-up 10k, tau_h 0.65.
_base_ = [
    '../_base_/models/cam_vit-b16.py', '../_base_/datasets/coco14_wsss.py',
    '../_base_/schedules/adamw_poly_32k.py', '../_base_/default_runtime.py'
]
num_classes = 80
max_iters = 60000
model = dict(
    cam_head=dict(num_classes=num_classes),
    aux_cam_head=dict(num_classes=num_classes),
    decode_head=dict(num_classes=num_classes + 1),
    train_cfg=dict(warmup_iters=10000, high_thr=0.65))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6 / 6e-5,
        by_epoch=False,
        begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        by_epoch=False,
        begin=1500,
        end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=10000)
default_hooks = dict(checkpoint=dict(interval=10000))
