# The synthetic set of tools/make_toy_voc.py (4 classes, ~136 px images).
dataset_type = 'WSSSToyDataset'
data_root = 'data/toy_voc'
crop_size = (128, 128)
data_prefix = dict(img_path='JPEGImages', seg_map_path='SegmentationClass')
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
    dict(type='LoadWSSSAnnotations'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(
    batch_size=8,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        cls_labels_file='cls_labels.npy',
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
        ann_file='ImageSets/Segmentation/val.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=data_prefix,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
train_eval_dataloader = dict(
    batch_size=1,
    num_workers=1,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='ImageSets/Segmentation/train.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=data_prefix,
        test_mode=True,
        indices=100,  # the first 100 train images keep validation quick
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
