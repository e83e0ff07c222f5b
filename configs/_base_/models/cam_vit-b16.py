# Single-stage CAM baseline on ViT-B/16 (methods.md §1.1-1.5).
# Backbone weights: a timm-layout ViT-B/16 checkpoint, e.g. converted with
# tools/convert_vit_weights.py into pretrain/vit_base_patch16_224.pth.
num_classes = 20  # foreground classes; the decoder predicts num_classes + 1
data_preprocessor = dict(
    type='WSSSDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(448, 448))
model = dict(
    type='CAMSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='WSSSViT',
        img_size=224,
        patch_size=16,
        embed_dims=768,
        num_layers=12,
        num_heads=12,
        mlp_ratio=4,
        qkv_bias=True,
        drop_path_rate=0.1,
        aux_layer=-3,
        freeze_pos_embed=True,
        pretrained='pretrain/vit_base_patch16_224.pth'),
    cam_head=dict(
        type='CAMHead', in_channels=768, num_classes=num_classes, pool='gmp'),
    aux_cam_head=dict(
        type='CAMHead',
        in_channels=768,
        num_classes=num_classes,
        pool='gmp',
        loss_cls=dict(type='MultiLabelSoftMarginLoss', loss_name='loss_cls')),
    decode_head=dict(
        type='LargeFOVHead',
        in_channels=768,
        channels=512,
        dilation=5,
        num_classes=num_classes + 1,
        align_corners=False,
        loss_decode=dict(
            type='BalancedCrossEntropyLoss',
            loss_weight=0.1,
            loss_name='loss_seg')),
    train_cfg=dict(
        warmup_iters=6000,
        cam_scales=(1.0, 0.5, 1.5),
        cam_flip=True,
        low_thr=0.25,
        high_thr=0.7),
    test_cfg=dict(scales=(1.0, 0.5, 1.5, 0.75, 1.25), flip=True, bg_thr=0.45))
