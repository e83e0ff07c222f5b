# APC on COCO 2014 with ViT-B/16: 80 classes, total batch 16 (4 GPUs x 4),
# 82,081 / 16 = 5,130 iterations per epoch, lr drop after 2 epochs, 6 epochs.
#   tools/dist_train.sh configs/apc/apc_vitb_coco.py 4
_base_ = [
    '../_base_/models/apc_vit-b16.py', '../_base_/datasets/coco14_wsss.py',
    '../_base_/schedules/adam_apc.py', '../_base_/default_runtime.py'
]
num_classes = 80
epoch_iters = 5130
crop_size = (384, 384)
model = dict(
    patch_head=dict(num_classes=num_classes),
    decode_head=dict(num_classes=num_classes + 1))
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomRescale', ratio_range=(0.5, 2.0)),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCropPad', crop_size=crop_size),
    dict(type='PackWSSSInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(960, 960), keep_ratio=False),
    dict(type='LoadWSSSAnnotations'),
    dict(type='PackWSSSInputs'),
]
train_dataloader = dict(batch_size=4, dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = val_dataloader
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        milestones=[2 * epoch_iters],
        gamma=0.1)
]
train_cfg = dict(max_iters=6 * epoch_iters, val_interval=2 * epoch_iters)
default_hooks = dict(checkpoint=dict(interval=2 * epoch_iters))
