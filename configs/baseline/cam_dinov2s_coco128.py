# CAM baseline, DINOv2-S/14 on the 128 real coco128 photos, a short CPU run:
#   ln -s ../../shared/data/coco128_voc data/coco128_voc
#   mkdir -p pretrain && ln -s \
#     ../../shared/weights/vit_small_patch14_dinov2_imgfocus_timm.pth \
#     pretrain/dinov2_vits14_timm.pth
#   python tools/train.py configs/baseline/cam_dinov2s_coco128.py
_base_ = [
    '../_base_/models/cam_dinov2-s14.py',
    '../_base_/datasets/coco128_wsss.py', '../_base_/default_runtime.py'
]
max_iters = 300
# CPU budget: 97 labelled photos need many samples per step for the linear
# classifier (an offline probe fits them at batch 32, lr 1e-2, not at batch
# 2-4); a trainable ViT-S at that batch is far too slow on 2 cores. So:
# frozen DINOv2 (heads and decoder train), batch 16, lr 1e-2. Unfreeze
# (frozen_stages=-1) on a GPU (cam_dinov2s_coco128_gpu.py).
# The frozen-backbone recipe (docs/en/notes/experiment_log.md, "Real
# photos on CPU"; each lever is one ablation row there, chosen on the
# coco128 "select" half):
# - score GAP instead of top-10% pooling: the CAM covers the object and its
#   best background threshold is above 0 (calibrated);
# - pseudo-label CAM from the training forward itself (single scale, no
#   flip: one backbone pass per step) and the decoder from iteration 50;
# - feature-affinity refinement of the CAMs over the frozen DINOv2 tokens,
#   for the decoder's pseudo-labels (train_cfg, beta 1) and the CAM output
#   (test_cfg, beta 8); training-free. beta 1 is 1.7 mIoU better on the
#   select half at test time but costs 7.3 on the synthetic set's CAMs;
#   beta 8 helps both (+1.4 / +1.9);
# - the decoder's pseudo-label at one background threshold, 0.2 (the CAMs'
#   best; low_thr = high_thr, no ignored band): seg 7.5 -> 10.2 (seed 1:
#   8.1 -> 10.7), select half 7.1 -> 8.3 (6.3 -> 8.3).
train_dataloader = dict(batch_size=16)
feat_refine = dict(beta=1.0, steps=1)
feat_refine_test = dict(beta=8.0, steps=1)
model = dict(
    backbone=dict(frozen_stages=12),
    cam_head=dict(pool='gap', pool_scores=True),
    aux_cam_head=dict(pool='gap', pool_scores=True),
    train_cfg=dict(
        warmup_iters=50,
        cam_scales=(1.0, ),
        cam_flip=False,
        cam_from_forward=True,
        low_thr=0.2,
        high_thr=0.2,
        feat_refine=feat_refine),
    test_cfg=dict(feat_refine=feat_refine_test))
# Recipe: the decoder at 1/10 of the heads' learning rate. At 1e-2 (right
# for the linear CAM classifiers) the LargeFOV decoder's ReLUs die (59% of
# its first conv's channels never fire after 300 iterations) and it
# predicts background on 97% of the pixels (seg 4.2); at 1e-3, 17% are dead
# and seg is 7.5 (8.1 with seed 1; the CAMs are unchanged). APC overrides
# it (its SegFormer head normalises and is better at 1e-2).
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-2, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(custom_keys={'decode_head': dict(lr_mult=0.1)}))
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
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=100, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
