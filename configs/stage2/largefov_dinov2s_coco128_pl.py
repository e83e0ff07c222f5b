# The multi-stage path on real photos (CPU): a plain supervised segmenter
# (mmseg's EncoderDecoder: the CAM recipe's frozen DINOv2-S/14 + a LargeFOV
# decoder, cross-entropy, its optimizer: decoder at 1e-3) trained on
# pseudo-labels exported by a trained WSSS model, and scored on the coco128
# masks like the single-stage configs (seg mIoU label-free / label-masked,
# all / select / report).
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
# Measured results: docs/en/notes/experiment_log.md, "Real photos on CPU".
_base_ = ['../baseline/cam_dinov2s_coco128.py']
model = dict(
    _delete_=True,
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
    backbone={{_base_.model.backbone}},  # frozen
    decode_head=dict(
        type='LargeFOVHead',
        in_channels=384,
        channels=256,
        dilation=5,
        num_classes=21,  # 20 VOC classes + background
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# the single-stage configs' crops, with the exported masks moved alongside
train_dataloader = dict(
    dataset=dict(
        data_root='work_dirs/pl_coco128',  # the export root of step 1
        ann_file='ImageSets/Segmentation/all.txt',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadWSSSAnnotations'),
            dict(type='RandomRescale', ratio_range=(0.5, 1.5)),
            dict(type='Resize', scale=(448, 448), keep_ratio=True),
            dict(type='RandomFlip', prob=0.5),
            dict(type='RandomCropPad', crop_size={{_base_.crop_size}}),
            dict(type='RandomGaussianBlur', prob=0.5),
            dict(type='PackWSSSInputs'),
        ]))
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
# 600 iterations (the base's scheduler is built from its own max_iters)
max_iters = 600
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
default_hooks = dict(checkpoint=dict(interval=200))
