# 128 real COCO photos with coarse VOC-20 masks (shared/data/coco128_voc).
# Reach it through a link, e.g. from the repository root:
#   ln -s ../../shared/data/coco128_voc data/coco128_voc   (see README)
# Image labels are derived from the masks (31 photos have no VOC class and
# are left out of training; the log says so). There is no held-out split:
# the CAM metric and the segmentation mIoU both use the 128 photos.
dataset_type = 'WSSSVOCDataset'
data_root = 'data/coco128_voc'
crop_size = (224, 224)
data_prefix = dict(img_path='JPEGImages', seg_map_path='SegmentationClass')
ann_file = 'ImageSets/Segmentation/all.txt'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 1.5)),
    dict(type='Resize', scale=(448, 448), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=crop_size),
    dict(type='RandomGaussianBlur', prob=0.5),
    dict(type='PackWSSSInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(336, 336), keep_ratio=True),
    dict(type='LoadWSSSAnnotations'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=4,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=data_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file=ann_file,
        data_prefix=data_prefix,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [
    dict(type='IoUMetric', iou_metrics=['mIoU']),
    dict(type='LabelMaskedIoUMetric', iou_metrics=['mIoU']),
    dict(type='PseudoMaskMetric'),
]
test_evaluator = val_evaluator
val_cfg = dict(type='WSSSValLoop')
