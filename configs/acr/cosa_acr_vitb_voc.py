# CoSA + ACR on VOC12 + SBD (ViT-B/16): ACR on the online network's
# attention (strong view and its flip), alpha = 125 (the paper's VOC value).
#   tools/dist_train.sh configs/acr/cosa_acr_vitb_voc.py 4
_base_ = ['../cosa/cosa_vitb_voc.py']
model = dict(regularizers=[dict(type='ACRLoss', loss_weight=125.0)])
