"""Class text embeddings of the CLIP WSSS methods (``clip.md`` §0.4).

The methods read class-name text through CLIP's text tower only once: the
rows are a fixed function of the checkpoint, the prompt template(s) and the
words. ``tools/clip_text_embeddings.py`` computes them on the user's machine
(the text tower and tokenizer come from ``open_clip``) and writes one
``.pth``; heads and tools read it with :func:`load_text_bank`.

File layout (a plain dict of tensors and strings; loads with the safe,
weights-only loader):

- ``fg`` (K, D) float32 unit rows, ``fg_names`` (K words as prompted);
- ``bg`` (M, D) float32 unit rows, ``bg_names`` (M background words);
  M = 0 is allowed;
- ``templates`` (the prompt templates), ``model`` (open_clip
  architecture), ``checkpoint`` and ``checkpoint_sha256`` (provenance;
  ``'random'`` for untrained towers), ``logit_scale`` (float).
"""
from typing import Dict, List, Sequence

import torch

#: CLIP-ES ``new_class_names`` for VOC (reused by WeCLIP, WeCLIP+, ExCEL)
VOC_WORDS = (
    'aeroplane', 'bicycle', 'bird avian', 'boat', 'bottle', 'bus', 'car',
    'cat', 'chair seat', 'cow', 'diningtable', 'dog', 'horse', 'motorbike',
    'person with clothes,people,human', 'pottedplant', 'sheep', 'sofa',
    'train', 'tvmonitor screen')
VOC_BG_WORDS = (
    'ground', 'land', 'grass', 'tree', 'building', 'wall', 'sky', 'lake',
    'water', 'river', 'sea', 'railway', 'railroad', 'keyboard', 'helmet',
    'cloud', 'house', 'mountain', 'ocean', 'road', 'rock', 'street',
    'valley', 'bridge', 'sign')
#: COCO: 23 of the VOC background words (no keyboard, no sign)
COCO_BG_WORDS = tuple(w for w in VOC_BG_WORDS
                      if w not in ('keyboard', 'sign'))
#: CLIP-ES's COCO renames (``sknowboard`` is the reference's typo, kept for
#: faithfulness: the published pseudo-masks were made with it)
COCO_RENAMES = {
    'person': 'person with clothes,people,human',
    'bird': 'bird avian',
    'chair': 'chair seat',
    'tv': 'tvmonitor screen',
    'backpack': 'backpack,bag',
    'umbrella': 'umbrella,parasol',
    'handbag': 'handbag,purse',
    'tie': 'necktie',
    'snowboard': 'sknowboard',
    'baseball glove': 'glove',
    'spoon': 'dessertspoon',
    'remote': 'remote control',
    'hair drier': 'hairdrier,blowdrier',
}
DEFAULT_TEMPLATES = ('a clean origami {}.', )


def coco_words() -> tuple:
    from mmseg_wsss.datasets.wsss_dataset import COCO_CLASSES
    return tuple(COCO_RENAMES.get(c, c) for c in COCO_CLASSES)


def zeroshot_rows(encode_text, tokenize, words: Sequence[str],
                  templates: Sequence[str]) -> torch.Tensor:
    """(len(words), D) unit rows: per word, each template's text embedding
    L2-normalised, averaged over templates, normalised again (CLIP's
    ``zeroshot_classifier``)."""
    rows = []
    with torch.no_grad():
        for word in words:
            emb = encode_text(tokenize([t.format(word) for t in templates]))
            emb = emb.float()
            emb = emb / emb.norm(dim=-1, keepdim=True)
            mean = emb.mean(0)
            rows.append(mean / mean.norm())
    if not rows:
        return torch.zeros(0, 0)
    return torch.stack(rows)


REQUIRED = ('fg', 'bg', 'fg_names', 'bg_names', 'templates')


def load_text_bank(path: str, num_classes: int = None,
                   dims: int = None) -> Dict:
    """Read and check a file of :mod:`tools/clip_text_embeddings.py`.

    Raises:
        ValueError: naming the file when a key is missing, the rows are not
            unit vectors, or the class count / width differ from the model's
            (with the command that writes a matching file).
    """
    import os.path as osp

    from mmseg_wsss.utils import safe_torch_load
    fix = ('write it with tools/clip_text_embeddings.py for your CLIP '
           'checkpoint and class list')
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'text embeddings {path!r} not found: {fix}, e.g. python '
            'tools/clip_text_embeddings.py --checkpoint CLIP.pth --classes '
            f'voc --out {path}')
    bank = safe_torch_load(path, map_location='cpu')
    if not isinstance(bank, dict) or any(k not in bank for k in REQUIRED):
        raise ValueError(f'{path}: not a text-embedding file (needs keys '
                         f'{", ".join(REQUIRED)}); {fix}')
    fg, bg = bank['fg'].float(), bank['bg'].float()
    if fg.dim() != 2 or len(fg) != len(bank['fg_names']):
        raise ValueError(f'{path}: fg is {tuple(fg.shape)} for '
                         f'{len(bank["fg_names"])} names; {fix}')
    if num_classes is not None and len(fg) != num_classes:
        raise ValueError(f'{path} has {len(fg)} foreground rows, the model '
                         f'{num_classes} classes; {fix}')
    if dims is not None and fg.shape[1] != dims:
        raise ValueError(f'{path} rows are {fg.shape[1]}-d, the CLIP model\'s'
                         f' image-text space is {dims}-d (another CLIP '
                         f'architecture?); {fix}')
    for name, rows in (('fg', fg), ('bg', bg)):
        if len(rows) and not torch.allclose(rows.norm(dim=1),
                                            torch.ones(len(rows)),
                                            atol=1e-3):
            raise ValueError(f'{path}: {name} rows are not unit vectors; '
                             f'{fix}')
    bank = dict(bank, fg=fg, bg=bg)
    return bank


def class_words(spec: str) -> List[str]:
    """``'voc'``, ``'coco'`` or a text file with one class (prompt words)
    per line."""
    if spec == 'voc':
        return list(VOC_WORDS)
    if spec == 'coco':
        return list(coco_words())
    with open(spec, encoding='utf-8') as f:
        words = [ln.strip() for ln in f if ln.strip()]
    if not words:
        raise ValueError(f'{spec}: no class words (one per line)')
    return words


def background_words(spec: str) -> List[str]:
    """``'voc'`` (25 words), ``'coco'`` (23), ``'none'`` or a file."""
    if spec == 'none':
        return []
    if spec == 'voc':
        return list(VOC_BG_WORDS)
    if spec == 'coco':
        return list(COCO_BG_WORDS)
    return class_words(spec)


def random_text_bank(path: str, num_classes: int, dims: int = 512,
                     num_bg: int = 25, seed: int = 0) -> str:
    """Write a file of the :func:`load_text_bank` layout with random unit
    rows (tests, and benchmarks where no CLIP weights exist). Returns
    ``path``."""
    g = torch.Generator().manual_seed(seed)
    fg = torch.randn(num_classes, dims, generator=g)
    bg = torch.randn(num_bg, dims, generator=g)
    torch.save(dict(fg=fg / fg.norm(dim=1, keepdim=True),
                    bg=bg / bg.norm(dim=1, keepdim=True),
                    fg_names=[f'c{i}' for i in range(num_classes)],
                    bg_names=[f'b{i}' for i in range(num_bg)],
                    templates=list(DEFAULT_TEMPLATES), model='random',
                    checkpoint='random', checkpoint_sha256='random',
                    logit_scale=100.0), str(path))
    return str(path)
