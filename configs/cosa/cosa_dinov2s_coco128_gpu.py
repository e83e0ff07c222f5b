# CoSA on coco128 with a TRAINABLE DINOv2-S/14 (one GPU, a few minutes;
# tools/gpu_check.sh runs it beside the CAM baseline's
# baseline/cam_dinov2s_coco128_gpu.py: same schedule, backbone at lr 1e-4,
# the papers' three CAM scales for the assignment network).
_base_ = ['./cosa_dinov2s_coco128.py']
model = dict(
    backbone=dict(frozen_stages=-1),
    train_cfg=dict(cam_scales=(1.0, 0.5, 1.5)))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.01))))
