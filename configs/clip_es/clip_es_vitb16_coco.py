# CLIP-ES on COCO 2014 (clip.md §1): as clip_es_vitb16_voc.py with the COCO
# words (CLIP-ES's renames, 'sknowboard' typo kept) and 23 background words:
#   python tools/clip_text_embeddings.py --checkpoint pretrain/clip_vitb16.pth \
#       --classes coco --out pretrain/clip_vitb16_text_coco.pth
#   python tools/gen_pseudo_labels.py configs/clip_es/clip_es_vitb16_coco.py \
#       none --source seg --out work_dirs/clip_es_coco
# Box threshold 0.7 for COCO (the reference's).
_base_ = ['./clip_es_vitb16_voc.py']
data_root = 'data/coco'
model = dict(
    text_embeddings='pretrain/clip_vitb16_text_coco.pth',
    test_cfg=dict(box_thr=0.7))
_dataset = dict(
    _delete_=True,
    type='WSSSCOCODataset',
    data_root=data_root,
    ann_file='train.txt',
    cls_labels_file='cls_labels.npy',
    data_prefix=dict(img_path='JPEGImages/train2014',
                     seg_map_path='SegmentationClass/train2014'))
train_dataloader = dict(dataset=dict(_dataset, pipeline=_base_.train_pipeline))
test_dataloader = dict(
    dataset=dict(_dataset, test_mode=True, pipeline=_base_.test_pipeline))
val_dataloader = test_dataloader
