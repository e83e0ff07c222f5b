# CoSA on the synthetic set + ACR on the online network (strong view and its
# flip); off again with --cfg-options model.regularizers=[]
_base_ = ['../cosa/cosa_tiny_toy.py']
model = dict(regularizers=[dict(type='ACRLoss', loss_weight=125.0)])
