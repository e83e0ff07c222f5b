# The CAM baseline on coco128 with a TRAINABLE DINOv2-S/14 (one GPU, a few
# minutes; tools/gpu_check.sh runs it): the CPU config with the backbone
# unfrozen at a 100x lower learning rate (1e-4) than the heads, and the
# papers' three CAM scales.
_base_ = ['./cam_dinov2s_coco128.py']
model = dict(
    backbone=dict(frozen_stages=-1),
    train_cfg=dict(
        cam_scales=(1.0, 0.5, 1.5), cam_flip=True, cam_from_forward=False))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.01))))
