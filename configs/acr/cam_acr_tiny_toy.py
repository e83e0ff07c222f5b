# The CAM baseline on the synthetic set + ACR (methods.md §4): the same
# config, one regulariser added. Turn it off again without touching code:
#   --cfg-options model.regularizers=[]
_base_ = ['../baseline/cam_tiny_toy.py']
model = dict(regularizers=[dict(type='ACRLoss', loss_weight=125.0)])
