# CAM baseline ("no swapping") on VOC12 + SBD with ViT-B/16, CoSA's recipe:
#   tools/dist_train.sh configs/baseline/cam_vitb_voc.py 4
_base_ = [
    '../_base_/models/cam_vit-b16.py', '../_base_/datasets/voc12_wsss.py',
    '../_base_/schedules/adamw_poly_32k.py', '../_base_/default_runtime.py'
]
