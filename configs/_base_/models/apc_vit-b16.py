# APC (methods.md §3) on ViT-B/16: patch classifier (HV-BiLSTM, bias-free
# linear to K+1, per-patch softmax, adaptive-K pooling) + patch contrast +
# single-stage all-MLP decoder (mmseg's SegformerHead) on blocks 3, 5, 7, 11.
num_classes = 20
data_preprocessor = dict(
    type='WSSSDataPreprocessor',
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=(384, 384))
model = dict(
    type='APC',
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
        out_indices=(3, 5, 7, 11),
        pretrained='pretrain/vit_base_patch16_224.pth'),
    patch_head=dict(
        type='PatchClassifierHead',
        in_channels=768,
        num_classes=num_classes,
        refiner=dict(type='HVBiLSTM', hidden=192, dropout=0.2),
        # pooling ablation: mode='avg' | 'max' | 'topk' (fixed top-6) | 'akp'
        pooling=dict(mode='akp', k_max=6, delta=0.2, criterion='difference'),
        loss_weight_l2=0.01),
    loss_pcl=dict(
        type='PatchContrastiveLoss', high_thr=0.85, loss_weight=0.02),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        channels=256,
        dropout_ratio=0.1,
        num_classes=num_classes + 1,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=0.9)),
    # par=dict(num_iter=10) refines the patch pseudo-labels (methods.md §1.6)
    train_cfg=dict(seg_start_iter=0, par=None),
    # the paper resizes test images to 960
    test_cfg=dict(scales=(1.0, ), flip=True))
