# APC on VOC12 + SBD with ViT-B/16 (methods.md §3): 384 crops, total batch
# 16, Adam with lr 1e-3 for 2 epochs then 1e-4, 15 epochs (the paper
# converges in ~15 of up to 50); test images resized to 960.
#   tools/dist_train.sh configs/apc/apc_vitb_voc.py 4     (4 GPUs x 4)
# Pooling ablation (methods.md §3; paper: avg 61.7, max 70.5, top-K 71.8,
# AKP 72.3):
#   --cfg-options model.patch_head.pooling.mode=avg    # global average
#   --cfg-options model.patch_head.pooling.mode=max    # global max (delta=0)
#   --cfg-options model.patch_head.pooling.mode=topk   # fixed top-6 mean
#   --cfg-options model.patch_head.pooling.criterion=ratio  # s_k/s_1 >= rho
_base_ = [
    '../_base_/models/apc_vit-b16.py', '../_base_/datasets/voc12_wsss.py',
    '../_base_/schedules/adam_apc.py', '../_base_/default_runtime.py'
]
crop_size = (384, 384)
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
