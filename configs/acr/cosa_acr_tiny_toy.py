# CoSA on the synthetic set + ACR on the online network (strong view and its
# flip); off again with --cfg-options model.regularizers=[]
_base_ = ['../cosa/cosa_tiny_toy.py']
# shared drop-path masks for the two views; flip_cls off (measured: no
# gain, see cam_acr_tiny_toy.py and the experiment log's ACR rows)
model = dict(regularizers=[
    dict(type='ACRLoss', loss_weight=125.0, flip_cls=False,
         shared_drop_path=True)
])
