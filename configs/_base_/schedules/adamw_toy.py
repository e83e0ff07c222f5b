# Short CPU schedule for the synthetic set (from-scratch tiny ViT).
max_iters = 900
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=5e-4, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'cam_head': dict(lr_mult=2.0),
            'decode_head': dict(lr_mult=2.0),
        }),
    clip_grad=dict(max_norm=5.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        by_epoch=False,
        begin=100,
        end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=300)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook', by_epoch=False, interval=300,
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # mmseg-wsss: RNG states of every rank in checkpoints (bit-exact
    # --resume); stop all ranks on a NaN/inf loss or weight
    rng_state=dict(type='RNGStateHook'),
    non_finite=dict(type='NonFiniteCheckHook'),
    # config typos mmengine ignores, and each method's preconditions
    config_check=dict(type='ConfigCheckHook'))
randomness = dict(seed=0)
