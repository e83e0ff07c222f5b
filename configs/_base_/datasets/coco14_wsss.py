# MS COCO 2014 for WSSS (80 classes), in the layout of the public WSSS codes:
#   data/coco/{JPEGImages,SegmentationClass}/{train2014,val2014}/, train.txt,
#   val.txt, train_1k.txt (any subset of train ids for the CAM metric),
#   cls_labels.npy (id -> 80-vector)
dataset_type = 'WSSSCOCODataset'
data_root = 'data/coco'
crop_size = (448, 448)
train_prefix = dict(
    img_path='JPEGImages/train2014',
    seg_map_path='SegmentationClass/train2014')
val_prefix = dict(
    img_path='JPEGImages/val2014', seg_map_path='SegmentationClass/val2014')
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
    batch_size=2,  # per GPU: 4 GPUs x 2 = the papers' total batch 8
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=train_prefix,
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=val_prefix,
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader
# CAM / pseudo-mask quality on a subset of the *train* set
train_eval_dataloader = dict(
    batch_size=1,
    num_workers=4,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train_1k.txt',
        cls_labels_file='cls_labels.npy',
        data_prefix=train_prefix,
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
