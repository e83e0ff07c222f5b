# WeCLIP on COCO 2014 (clip.md §2; the paper's figure, not ours: COCO val
# 47.1 with CRF): 80k iterations, the same lr and crop; the RFM considers the
# last 10 layers; box threshold 0.7. Text rows:
#   python tools/clip_text_embeddings.py --checkpoint pretrain/clip_vitb16.pth \
#       --classes coco --out pretrain/clip_vitb16_text_coco.pth
_base_ = ['./weclip_vitb16_voc.py']
dataset_type = 'WSSSCOCODataset'
data_root = 'data/coco'
model = dict(
    text_embeddings='pretrain/clip_vitb16_text_coco.pth',
    decode_head=dict(num_classes=81),
    train_cfg=dict(rfm_last=10, box_thr=0.7))
train_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='train.txt',
        data_prefix=dict(
            img_path='JPEGImages/train2014',
            seg_map_path='SegmentationClass/train2014')))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='val.txt',
        data_prefix=dict(
            img_path='JPEGImages/val2014',
            seg_map_path='SegmentationClass/val2014')))
test_dataloader = val_dataloader
max_iters = 80000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=50),
    dict(type='PolyLR', eta_min=0.0, power=1.0, by_epoch=False, begin=50,
         end=max_iters),
]
train_cfg = dict(max_iters=max_iters, val_interval=10000)
