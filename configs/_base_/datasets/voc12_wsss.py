# PASCAL VOC 2012 + SBD for WSSS. Expected on disk (see
# docs/en/user_guides/1_dataset_prepare.md):
#   data/VOCdevkit/VOC2012/{JPEGImages,SegmentationClassAug,
#                           ImageSets/Segmentation/{train_aug,train,val}.txt,
#                           cls_labels.npy}
dataset_type = 'WSSSVOCDataset'
data_root = 'data/VOCdevkit/VOC2012'
crop_size = (448, 448)
data_prefix = dict(img_path='JPEGImages', seg_map_path='SegmentationClassAug')
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=crop_size),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackWSSSInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=crop_size, keep_ratio=False),
    dict(type='LoadWSSSAnnotations'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=1,  # per GPU: 4 GPUs x 1 = the papers' total batch 4
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train_aug.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=data_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/val.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=data_prefix,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# CAM / pseudo-mask quality is measured on the *train* set (1,464 ids)
train_eval_dataloader = dict(
    batch_size=1,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=data_prefix,
        test_mode=True,
        pipeline=test_pipeline))
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='LabelMaskedIoUMetric', iou_metrics=['mIoU']),
]
test_evaluator = val_evaluator
val_cfg = dict(
    type='WSSSValLoop',
    extra_evals=[
        dict(
            name='train',
            dataloader=train_eval_dataloader,
            evaluator=dict(type='PseudoMaskMetric'),
            # the metric masks the maps by the image labels, so the model
            # may use them: GETAM computes only the present classes
            image_labels_known=True)
    ])
