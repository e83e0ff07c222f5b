# 128 real COCO photos with coarse VOC-20 masks (shared/data/coco128_voc).
# Reach it through a link, e.g. from the repository root:
#   ln -s ../../shared/data/coco128_voc data/coco128_voc
# (see docs/en/get_started.md, "Shared assets of this project")
# Image labels are derived from the masks (31 photos have no VOC class and
# are left out of training; the log says so). There is no held-out split:
# the CAM metric and the segmentation mIoU both use the 128 photos; each is
# also reported on the two fixed halves below (``select/...``,
# ``report/...``).
# A fixed split of the 97 labelled coco128 photos (those with a VOC class)
# into two halves: a recipe is chosen on ``select`` and reported on
# ``report`` and on all 128 photos, so it is not tuned to its report.
# Made once, stratified by each photo's rarest VOC class (groups taken from
# rarest to most common, ids in order, assigned alternately): 49 + 48 ids.
# The 31 photos without a VOC class are in neither half (they count in the
# whole-set numbers only).
coco128_select_ids = [
    '000000000030', '000000000042', '000000000049', '000000000061',
    '000000000071', '000000000086', '000000000094', '000000000113',
    '000000000136', '000000000138', '000000000142', '000000000192',
    '000000000196', '000000000247', '000000000257', '000000000260',
    '000000000283', '000000000307', '000000000308', '000000000326',
    '000000000328', '000000000349', '000000000357', '000000000368',
    '000000000382', '000000000384', '000000000394', '000000000395',
    '000000000397', '000000000404', '000000000419', '000000000428',
    '000000000436', '000000000474', '000000000510', '000000000520',
    '000000000531', '000000000532', '000000000540', '000000000564',
    '000000000569', '000000000575', '000000000581', '000000000589',
    '000000000605', '000000000629', '000000000634', '000000000643',
    '000000000650'
]
coco128_report_ids = [
    '000000000036', '000000000064', '000000000073', '000000000074',
    '000000000077', '000000000081', '000000000109', '000000000110',
    '000000000127', '000000000143', '000000000149', '000000000151',
    '000000000164', '000000000165', '000000000201', '000000000241',
    '000000000294', '000000000309', '000000000315', '000000000322',
    '000000000338', '000000000359', '000000000360', '000000000370',
    '000000000389', '000000000400', '000000000415', '000000000431',
    '000000000443', '000000000446', '000000000450', '000000000459',
    '000000000471', '000000000472', '000000000486', '000000000488',
    '000000000490', '000000000529', '000000000536', '000000000542',
    '000000000544', '000000000560', '000000000572', '000000000595',
    '000000000599', '000000000623', '000000000625', '000000000641'
]
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
coco128_halves = dict(select=coco128_select_ids, report=coco128_report_ids)
val_evaluator = [
    dict(type='SubsetMetric', subsets=coco128_halves, metric=m) for m in (
        dict(type='IoUMetric', iou_metrics=['mIoU']),
        dict(type='LabelMaskedIoUMetric', iou_metrics=['mIoU']),
        dict(type='PseudoMaskMetric'),
    )
]
test_evaluator = val_evaluator
val_cfg = dict(type='WSSSValLoop')
