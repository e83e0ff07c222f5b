# cosa_tiny_toy.py with twice the iterations (1800, same 300-iteration warm-up):
# the 900-iteration schedule ends while both models are still improving.
_base_ = ['./cosa_tiny_toy.py']
max_iters = 1800
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
train_cfg = dict(max_iters=max_iters, val_interval=600)
default_hooks = dict(checkpoint=dict(interval=600))
