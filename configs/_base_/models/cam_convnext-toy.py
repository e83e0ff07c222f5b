# A small hierarchical backbone trained from scratch, the CPU counterpart of
# cam_vit-tiny.py on the synthetic set: mmpretrain's ConvNeXt with three
# stages (strides 4 / 8 / 16, 48 / 96 / 192 channels, ~1.1 M parameters).
# CAM on the last stage (8 x 8 at the 128 crop), aux CAM on the one before,
# an all-MLP decoder over the three stages.
num_classes = 4
data_preprocessor = dict(
    type='WSSSDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(128, 128))
model = dict(
    type='CAMSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='mmpretrain.ConvNeXt',
        arch=dict(depths=[2, 2, 4], channels=[48, 96, 192]),
        out_indices=(0, 1, 2),
        gap_before_final_norm=False,
        drop_path_rate=0.1,
        wsss=dict(cam=2, aux=1, decode=(0, 1, 2), stride=16)),
    cam_head=dict(
        type='CAMHead', in_channels=192, num_classes=num_classes, pool='gmp'),
    aux_cam_head=dict(
        type='CAMHead', in_channels=96, num_classes=num_classes, pool='gmp'),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[48, 96, 192],
        in_index=[0, 1, 2],
        channels=128,
        num_classes=num_classes + 1,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='BalancedCrossEntropyLoss',
            loss_weight=0.1,
            loss_name='loss_seg')),
    train_cfg=dict(
        warmup_iters=300,
        cam_scales=(1.0, 0.5),
        cam_flip=True,
        low_thr=0.25,
        high_thr=0.7),
    test_cfg=dict(scales=(1.0, ), flip=True, bg_thr=0.45))
