# CoSA + ACR on VOC12 + SBD (ViT-B/16): ACR on the online network's
# attention (strong view and its flip), alpha = 125 (the paper's VOC value).
#   tools/dist_train.sh configs/acr/cosa_acr_vitb_voc.py 4
_base_ = ['../cosa/cosa_vitb_voc.py']
# The ViT-B has drop path 0.1: both views share its masks, so ACR penalises
# view inconsistency only. flip_cls (the authors' CE on the flipped crop) is
# off: on the synthetic set it did not help CAM / CoSA + ACR
# (docs/en/notes/experiment_log.md).
model = dict(regularizers=[
    dict(type='ACRLoss', loss_weight=125.0, flip_cls=False,
         shared_drop_path=True)
])
