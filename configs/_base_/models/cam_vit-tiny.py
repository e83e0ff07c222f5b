# A tiny ViT (patch 8, 4 blocks, 128 dims) trained from scratch: the CPU
# model of the synthetic set. Same components as cam_vit-b16.py.
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
        type='WSSSViT',
        img_size=128,
        patch_size=8,
        embed_dims=128,
        num_layers=4,
        num_heads=4,
        mlp_ratio=2,
        aux_layer=-2,
        drop_path_rate=0.1),
    cam_head=dict(
        type='CAMHead', in_channels=128, num_classes=num_classes, pool='gmp'),
    aux_cam_head=dict(
        type='CAMHead', in_channels=128, num_classes=num_classes, pool='gmp'),
    decode_head=dict(
        type='LargeFOVHead',
        in_channels=128,
        channels=128,
        dilation=2,
        num_classes=num_classes + 1,
        align_corners=False,
        loss_decode=dict(
            type='BalancedCrossEntropyLoss',
            loss_weight=0.1,
            loss_name='loss_seg')),
    train_cfg=dict(
        warmup_iters=300,
        # the papers' (1.0, 0.5, 1.5) costs 3x more on CPU for no toy gain
        cam_scales=(1.0, 0.5),
        cam_flip=True,
        low_thr=0.25,
        high_thr=0.7),
    test_cfg=dict(scales=(1.0, ), flip=True, bg_thr=0.45))
