# CoSA on VOC12 + SBD with mmpretrain's ViT-B/16 (any mmpretrain backbone
# plugs in the same way: backbone.wsss names which output is which):
#   tools/dist_train.sh configs/cosa/cosa_mmpretrain-vitb16_voc.py 4
# Weights: mmpretrain's ViT-B/16, ImageNet-21k pre-trained and fine-tuned on
# ImageNet-1k at 384 px (converted from Google's release), the same kind of
# weights the CoSA paper used (timm's ImageNet-21k ViT-B/16). mmengine
# downloads them on first use; the position embedding is resized to the
# crop on the fly. Everything else is cosa_vitb_voc.py.
# For ACR / GETAM use WSSSViT (cosa_acr_vitb_voc.py) with this very file:
# WSSSViT loads mmpretrain-layout checkpoints directly.
_base_ = ['./cosa_vitb_voc.py']
model = dict(
    backbone=dict(
        _delete_=True,
        type='mmpretrain.VisionTransformer',
        arch='base',
        img_size=384,
        patch_size=16,
        drop_path_rate=0.1,
        # block 9 (aux CAM, as CoSA's aux_layer=-3) and block 11 (CAM,
        # after the final norm)
        out_indices=(9, 11),
        out_type='featmap',
        final_norm=True,
        init_cfg=dict(
            type='Pretrained',
            prefix='backbone.',
            checkpoint='https://download.openmmlab.com/mmclassification/v0/'
            'vit/finetune/vit-base-p16_in21k-pre-3rdparty_ft-64xb64_in1k-'
            '384_20210928-98e8652b.pth'),
        wsss=dict(cam=1, aux=0, decode=1, stride=16)))
