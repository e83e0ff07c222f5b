# CAMSegmentor on the stock mmseg config
#   mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py
# with the WSSS recipe of configs/baseline/cam_vitb_voc.py. Written by
#   python tools/wsss_config.py mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py --method cam --out configs/stock/cam_deeplabv3plus-r50_voc.py
# The stock config keeps the backbone (and its pretrained weights)
# and the decode head; the model block below turns them into a WSSS
# model, the rest is the recipe's data, schedule, hooks and loops.
_base_ = ['mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py']

# Backbone outputs found (one forward on a random image):
#   0: 256 ch / stride 4, 1: 512 ch / stride 8, 2: 1024 ch / stride 8, 3: 2048 ch / stride 8
# backbone.wsss: positions in the tuple the backbone returns (not
# stage numbers); in_channels: the channels of the map a head reads.
model = dict(
    type='CAMSegmentor',
    data_preprocessor=dict(type='WSSSDataPreprocessor', size=(448, 448)),
    backbone=dict(wsss=dict(cam=3, aux=2, decode=(0, 1, 2, 3), stride=8)),
    auxiliary_head=None,
    cam_head=dict(type='CAMHead', in_channels=2048, num_classes=20, pool='gmp'),
    aux_cam_head=dict(
        type='CAMHead',
        in_channels=1024,
        num_classes=20,
        pool='gmp',
        loss_cls=dict(type='MultiLabelSoftMarginLoss', loss_name='loss_cls')),
    train_cfg=dict(
        _delete_=True,
        warmup_iters=6000,
        cam_scales=(1.0, 0.5, 1.5),
        cam_flip=True,
        low_thr=0.25,
        high_thr=0.7),
    test_cfg=dict(
        _delete_=True,
        scales=(1.0, 0.5, 1.5, 0.75, 1.25),
        flip=True,
        bg_thr=0.45),
    decode_head=dict(
        num_classes=21,
        loss_decode=dict(
            _delete_=True,
            type='BalancedCrossEntropyLoss',
            loss_weight=0.1,
            loss_name='loss_seg')))

# ---- from the recipe configs/baseline/cam_vitb_voc.py ----
custom_imports = dict(imports=['mmseg_wsss'], allow_failed_imports=False)
crop_size = (448, 448)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=(448, 448)),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackWSSSInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(448, 448), keep_ratio=False),
    dict(type='LoadWSSSAnnotations'),
    dict(type='PackWSSSInputs')]
train_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type='WSSSVOCDataset',
        data_root='data/VOCdevkit/VOC2012',
        ann_file='ImageSets/Segmentation/train_aug.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=dict(
            img_path='JPEGImages',
            seg_map_path='SegmentationClassAug'),
        pipeline=train_pipeline))
val_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='WSSSVOCDataset',
        data_root='data/VOCdevkit/VOC2012',
        ann_file='ImageSets/Segmentation/val.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=dict(
            img_path='JPEGImages',
            seg_map_path='SegmentationClassAug'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = dict(
    _delete_=True,
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type='WSSSVOCDataset',
        data_root='data/VOCdevkit/VOC2012',
        ann_file='ImageSets/Segmentation/val.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=dict(
            img_path='JPEGImages',
            seg_map_path='SegmentationClassAug'),
        test_mode=True,
        pipeline=test_pipeline))
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='LabelMaskedIoUMetric', iou_metrics=['mIoU'])]
test_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='LabelMaskedIoUMetric', iou_metrics=['mIoU'])]
train_cfg = dict(
    _delete_=True,
    type='IterBasedTrainLoop',
    max_iters=32000,
    val_interval=4000)
val_cfg = dict(
    _delete_=True,
    type='WSSSValLoop',
    extra_evals=[
        dict(
            name='train',
            dataloader=dict(
                batch_size=1,
                num_workers=4,
                sampler=dict(type='DefaultSampler', shuffle=False),
                dataset=dict(
                    type='WSSSVOCDataset',
                    data_root='data/VOCdevkit/VOC2012',
                    ann_file='ImageSets/Segmentation/train.txt',
                    cls_labels_file='cls_labels.npy',
                    data_prefix=dict(
                        img_path='JPEGImages',
                        seg_map_path='SegmentationClassAug'),
                    test_mode=True,
                    pipeline=test_pipeline)),
            evaluator=dict(type='PseudoMaskMetric'),
            image_labels_known=True)])
test_cfg = dict(_delete_=True, type='TestLoop')
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW',
        lr=6e-05,
        betas=(0.9, 0.999),
        weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys=dict(
            cam_head=dict(lr_mult=10.0),
            decode_head=dict(lr_mult=10.0))))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=0.016666666666666666,
        by_epoch=False,
        begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        by_epoch=False,
        begin=1500,
        end=32000)]
default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook',
        by_epoch=False,
        interval=4000,
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    rng_state=dict(type='RNGStateHook'),
    non_finite=dict(type='NonFiniteCheckHook'),
    config_check=dict(type='ConfigCheckHook'))
model_wrapper_cfg = dict(
    type='MMDistributedDataParallel',
    find_unused_parameters=True,
    broadcast_buffers=False)
log_processor = dict(_delete_=True, by_epoch=False)
