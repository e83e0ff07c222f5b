# The CAM baseline on the synthetic set + ACR (methods.md §4): the same
# config, one regulariser added. Turn it off again without touching code:
#   --cfg-options model.regularizers=[]
_base_ = ['../baseline/cam_tiny_toy.py']
# shared_drop_path: the image and its flip drop the same paths (drop path
# 0.1 here), so ACR compares one network on two views. flip_cls (also
# classifying the flipped crop, as the ACR authors' training does) is off:
# on this set it cost 0.4-1.2 seg mIoU over two seeds
# (docs/en/notes/experiment_log.md, ACR rows).
model = dict(regularizers=[
    dict(type='ACRLoss', loss_weight=125.0, flip_cls=False,
         shared_drop_path=True)
])
