# The multi-stage path on real photos (CPU): a plain supervised segmenter
# (mmseg's EncoderDecoder: frozen DINOv2-S/14 + a LargeFOV decoder, cross-
# entropy) trained on pseudo-labels exported by a trained WSSS model, and
# scored on the coco128 masks like the single-stage configs (seg mIoU
# label-free / label-masked, all / select / report).
#
# 1. export the pseudo-labels of a coco128 recipe checkpoint (its CAMs,
#    refined over the backbone tokens, at its best background threshold):
#      python tools/gen_pseudo_labels.py configs/apc/apc_dinov2s_coco128.py \
#          work_dirs/apc_dinov2s_coco128/iter_600.pth --source cam \
#          --feat-refine --bg-thr 0.35 --out work_dirs/pl_coco128
#    (it prints their mIoU against the masks)
# 2. python tools/train.py configs/stage2/largefov_dinov2s_coco128_pl.py
#    (another export root: --cfg-options
#    train_dataloader.dataset.data_root=DIR)
# Measured results: README, "Real photos on CPU".
_base_ = [
    '../_base_/datasets/coco128_wsss.py', '../_base_/default_runtime.py'
]
num_classes = 20
max_iters = 600
model = dict(
    type='EncoderDecoder',
    data_preprocessor=dict(
        type='WSSSDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(224, 224),
        # whole-image inference: pad to the patch size (un-padded after)
        test_cfg=dict(size_divisor=14)),
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
        freeze_pos_embed=True,
        frozen_stages=12,
        pretrained='pretrain/dinov2_vits14_timm.pth'),
    decode_head=dict(
        type='LargeFOVHead',
        in_channels=384,
        channels=256,
        dilation=5,
        num_classes=num_classes + 1,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# the single-stage configs' crops, with the exported masks moved alongside
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadWSSSAnnotations'),
    dict(type='RandomRescale', ratio_range=(0.5, 1.5)),
    dict(type='Resize', scale=(448, 448), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size={{_base_.crop_size}}),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=16,
    dataset=dict(
        data_root='work_dirs/pl_coco128',  # the export root of step 1
        ann_file='ImageSets/Segmentation/all.txt',
        # the photos' image labels come from the masks they are shown with;
        # the exported ones hold the same classes (label-masked export)
        pipeline=train_pipeline))
# seg mIoU only: the supervised model has no CAMs to score
val_evaluator = [
    dict(
        type='SubsetMetric',
        subsets={{_base_.coco128_halves}},
        metric=dict(type=t, iou_metrics=['mIoU']))
    for t in ('IoUMetric', 'LabelMaskedIoUMetric')
]
test_evaluator = val_evaluator
val_cfg = dict(type='ValLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=20),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        by_epoch=False,
        begin=20,
        end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_dataloader = dict(num_workers=1)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=200, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
