# CoSA/ToCo recipe: AdamW 6e-5, heads x10, 1500 linear warm-up iterations
# from 1e-6, then poly 0.9 to the end.
max_iters = 32000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.01),
    paramwise_cfg=dict(
        custom_keys={
            'cam_head': dict(lr_mult=10.0),
            'decode_head': dict(lr_mult=10.0),
        }))
param_scheduler = [
    dict(
        type='LinearLR',
        start_factor=1e-6 / 6e-5,
        by_epoch=False,
        begin=0,
        end=1500),
    dict(
        type='PolyLR',
        eta_min=0.0,
        power=0.9,
        by_epoch=False,
        begin=1500,
        end=max_iters),
]
train_cfg = dict(
    type='IterBasedTrainLoop', max_iters=max_iters, val_interval=4000)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook',
        by_epoch=False,
        interval=4000,
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # mmseg-wsss: RNG states of every rank in checkpoints (bit-exact
    # --resume); stop all ranks on a NaN/inf loss or weight
    rng_state=dict(type='RNGStateHook'),
    non_finite=dict(type='NonFiniteCheckHook'),
    # config typos mmengine ignores, and each method's preconditions
    config_check=dict(type='ConfigCheckHook'))
