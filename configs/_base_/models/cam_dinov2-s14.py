# CAM baseline on DINOv2 ViT-S/14 (the shared offline weights; see
# docs/en/get_started.md, "Shared assets of this project":
# pretrain/dinov2_vits14_timm.pth is a link to them).
num_classes = 20
data_preprocessor = dict(
    type='WSSSDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(224, 224))
model = dict(
    type='CAMSegmentor',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='WSSSViT',
        img_size=518,
        patch_size=14,
        embed_dims=384,
        num_layers=12,
        num_heads=6,
        mlp_ratio=4,
        qkv_bias=True,
        layer_scale_init=1.0,
        drop_path_rate=0.0,
        aux_layer=-3,
        freeze_pos_embed=True,
        pretrained='pretrain/dinov2_vits14_timm.pth'),
    # DINOv2's final tokens have a few high-norm outlier channels: the
    # per-channel max of the features (ToCo's GMP) is nearly the same vector
    # for every photo (mean cosine 0.92 on coco128, 0.61 for GAP), and the
    # classifier does not learn. Pool the per-token class scores instead.
    cam_head=dict(
        type='CAMHead',
        in_channels=384,
        num_classes=num_classes,
        pool='topk',
        topk_ratio=0.1),
    aux_cam_head=dict(
        type='CAMHead',
        in_channels=384,
        num_classes=num_classes,
        pool='topk',
        topk_ratio=0.1),
    decode_head=dict(
        type='LargeFOVHead',
        in_channels=384,
        channels=256,
        dilation=5,
        num_classes=num_classes + 1,
        align_corners=False,
        loss_decode=dict(
            type='BalancedCrossEntropyLoss',
            loss_weight=0.1,
            loss_name='loss_seg')),
    train_cfg=dict(
        warmup_iters=100,
        cam_scales=(1.0, 0.5, 1.5),
        cam_flip=True,
        low_thr=0.25,
        high_thr=0.7),
    test_cfg=dict(scales=(1.0, ), flip=True, bg_thr=0.45))
