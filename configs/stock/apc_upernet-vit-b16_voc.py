# APC on the stock mmseg config
#   mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py
# with the WSSS recipe of configs/apc/apc_vitb_voc.py. Written by
#   python tools/wsss_config.py mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py --method apc --out configs/stock/apc_upernet-vit-b16_voc.py
# The stock config keeps the backbone (and its pretrained weights)
# and the decode head; the model block below turns them into a WSSS
# model, the rest is the recipe's data, schedule, hooks and loops.
_base_ = ['mmseg::vit/vit_vit-b16_mln_upernet_8xb2-80k_ade20k-512x512.py']

# Backbone outputs found (one forward on a random image):
#   0: 768 ch / stride 16, 1: 768 ch / stride 16, 2: 768 ch / stride 16, 3: 768 ch / stride 16
# backbone.wsss: positions in the tuple the backbone returns (not
# stage numbers); in_channels: the channels of the map a head reads.
model = dict(
    type='APC',
    data_preprocessor=dict(type='WSSSDataPreprocessor', size=(384, 384)),
    backbone=dict(wsss=dict(cam=3, aux=2, decode=(0, 1, 2, 3), stride=16)),
    auxiliary_head=None,
    neck=None,
    patch_head=dict(
        type='PatchClassifierHead',
        in_channels=768,
        num_classes=20,
        refiner=dict(type='HVBiLSTM', hidden=192, dropout=0.2),
        pooling=dict(mode='akp', k_max=6, delta=0.2, criterion='difference'),
        loss_weight_l2=0.01),
    loss_pcl=dict(type='PatchContrastiveLoss', high_thr=0.85, loss_weight=0.02),
    train_cfg=dict(_delete_=True, seg_start_iter=0, par=None),
    test_cfg=dict(_delete_=True, scales=(1.0,), flip=True),
    decode_head=dict(
        num_classes=21,
        loss_decode=dict(
            _delete_=True,
            type='CrossEntropyLoss',
            use_sigmoid=False,
            avg_non_ignore=True,
            loss_weight=0.9)))

# ---- from the recipe configs/apc/apc_vitb_voc.py ----
custom_imports = dict(imports=['mmseg_wsss'], allow_failed_imports=False)
crop_size = (384, 384)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=(384, 384)),
    dict(type='PackWSSSInputs')]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(960, 960), keep_ratio=False),
    dict(type='LoadWSSSAnnotations'),
    dict(type='PackWSSSInputs')]
train_dataloader = dict(
    _delete_=True,
    batch_size=4,
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
    max_iters=9930,
    val_interval=3310)
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
                    pipeline=[
                        dict(type='LoadImageFromFile'),
                        dict(type='Resize', scale=(448, 448), keep_ratio=False),
                        dict(type='LoadWSSSAnnotations'),
                        dict(type='PackWSSSInputs')])),
            evaluator=dict(type='PseudoMaskMetric'),
            image_labels_known=True)])
test_cfg = dict(_delete_=True, type='TestLoop')
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=0.001, betas=(0.9, 0.999), weight_decay=0.0))
param_scheduler = [
    dict(type='MultiStepLR', by_epoch=False, milestones=[1324], gamma=0.1)]
default_hooks = dict(
    _delete_=True,
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook',
        by_epoch=False,
        interval=3310,
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
