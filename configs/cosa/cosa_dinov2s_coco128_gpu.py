# CoSA on coco128 with a TRAINABLE DINOv2-S/14 (one GPU, a few minutes;
# tools/gpu_check.sh runs it beside the CAM baseline's
# baseline/cam_dinov2s_coco128_gpu.py: same schedule, backbone at lr 1e-4,
# the papers' three CAM scales for the assignment network, and the paper's
# pseudo-labels where the backbone trains: the aux-CAM half of L_c2s and
# dynamic thresholds from 0.25 / 0.7).
_base_ = ['./cosa_dinov2s_coco128.py']
model = dict(
    backbone=dict(frozen_stages=-1),
    dynamic_threshold=dict(enabled=True),
    train_cfg=dict(
        cam_scales=(1.0, 0.5, 1.5),
        cam_flip=True,
        low_thr=0.25,
        high_thr=0.7,
        c2s_aux_weight=0.5))
crop_size = (224, 224)
train_pipeline = [  # the paper's strong view for the online network
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 1.5)),
    dict(type='Resize', scale=(448, 448), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=crop_size),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='StrongPhotometricView', magnitude_range=(1, 9)),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
optim_wrapper = dict(
    paramwise_cfg=dict(custom_keys=dict(backbone=dict(lr_mult=0.01))))
