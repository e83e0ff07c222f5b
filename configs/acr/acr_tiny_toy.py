# ACR's own model on the synthetic set: a class-token classifier trained
# with the ACR regulariser; the train-set pseudo-mask metric evaluates its
# class-token-gradient (GETAM) maps (start block -2 = block 2 of 0..3,
# affinity refinement). Without ACR: --cfg-options model.regularizers=[]
_base_ = ['../baseline/cam_tiny_toy.py']
model = dict(
    decode_head=None,
    token_head=dict(type='ClsTokenHead', in_channels=128, num_classes=4),
    # the authors' training: CE on the image and on its flip + ACR; one
    # drop-path mask for both views
    regularizers=[
        dict(type='ACRLoss', loss_weight=125.0, flip_cls=True,
             shared_drop_path=True)
    ],
    train_cfg=dict(warmup_iters=0),
    test_cfg=dict(
        localizer='getam',
        getam=dict(start_block=-2, affinity=True),
        scales=(1.0, ),
        flip=True,
        bg_thr=0.45))
# the base's decode_head learning-rate key would match no parameter here
# (no decoder): ConfigCheckHook refuses such keys, so they are restated
optim_wrapper = dict(
    paramwise_cfg=dict(
        custom_keys=dict(_delete_=True, cam_head=dict(lr_mult=2.0))))
