# APC's recipe (methods.md §3): Adam, lr 1e-3 for the first 2 epochs, then
# 1e-4. One epoch = epoch_iters iterations at the config's total batch
# (VOC train_aug 10,582 / 16 = 662); children override the three numbers.
epoch_iters = 662
max_iters = 15 * epoch_iters
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='Adam', lr=1e-3, betas=(0.9, 0.999), weight_decay=0.0))
param_scheduler = [
    dict(
        type='MultiStepLR',
        by_epoch=False,
        milestones=[2 * epoch_iters],
        gamma=0.1)
]
train_cfg = dict(
    type='IterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=5 * epoch_iters)
test_cfg = dict(type='TestLoop')
default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(
        type='AtomicCheckpointHook',
        by_epoch=False,
        interval=5 * epoch_iters,
        max_keep_ckpts=2),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'),
    # mmseg-wsss: RNG states of every rank in checkpoints (bit-exact
    # --resume); stop all ranks on a NaN/inf loss or weight
    rng_state=dict(type='RNGStateHook'),
    non_finite=dict(type='NonFiniteCheckHook'),
    # config typos mmengine ignores, and each method's preconditions
    config_check=dict(type='ConfigCheckHook'))
