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
max_iters = 600
train_dataloader = dict(batch_size=2)
# CPU budget: single-scale (+flip) CAM pseudo-labels instead of the papers'
# (1.0, 0.5, 1.5), which would triple the cost of every iteration
model = dict(train_cfg=dict(warmup_iters=300, cam_scales=(1.0, )))
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            # 97 photos: the classifiers need a faster start than the
            # papers' x10 to learn the rare classes within 300 iterations
            'cam_head': dict(lr_mult=20.0),
            'decode_head': dict(lr_mult=10.0),
        }))
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
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=150)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='CheckpointHook', by_epoch=False, interval=150, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
randomness = dict(seed=0)
