# APC on the synthetic set (CPU, minutes): the CAM baseline's tiny ViT,
# data, schedule and seed (configs/baseline/cam_tiny_toy.py), APC's model.
# The tiny ViT trains from scratch, so it keeps the baseline's AdamW/poly
# schedule rather than the paper's Adam 1e-3 -> 1e-4 for a pretrained ViT;
# the decoder starts after the same 300 iterations as the baseline's.
# Pooling ablation: --cfg-options model.patch_head.pooling.mode=avg|max|topk
_base_ = ['../baseline/cam_tiny_toy.py']
num_classes = 4
model = dict(
    _delete_=True,
    type='APC',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='WSSSViT',
        img_size=128,
        patch_size=8,
        embed_dims=128,
        num_layers=4,
        num_heads=4,
        mlp_ratio=2,
        drop_path_rate=0.1,
        out_indices=(0, 1, 2, 3)),
    patch_head=dict(
        type='PatchClassifierHead',
        in_channels=128,
        num_classes=num_classes,
        refiner=dict(type='HVBiLSTM', hidden=32, dropout=0.2),
        pooling=dict(mode='akp', k_max=6, delta=0.2),
        loss_weight_l2=0.01),
    loss_pcl=dict(
        type='PatchContrastiveLoss', high_thr=0.85, loss_weight=0.02),
    decode_head=dict(
        type='SegformerHead',
        in_channels=[128, 128, 128, 128],
        in_index=[0, 1, 2, 3],
        channels=128,
        dropout_ratio=0.1,
        num_classes=num_classes + 1,
        norm_cfg=dict(type='BN', requires_grad=True),
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss',
            use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=0.9)),
    train_cfg=dict(seg_start_iter=300),
    test_cfg=dict(scales=(1.0, ), flip=True))
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys={
            '_delete_': True,  # the base's cam_head key matches nothing here
            'patch_head': dict(lr_mult=2.0),
            'decode_head': dict(lr_mult=2.0),
        }))
