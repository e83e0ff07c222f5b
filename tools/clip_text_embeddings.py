"""Write the class text embeddings a CLIP WSSS method reads, from a CLIP
checkpoint on your disk.

    python tools/clip_text_embeddings.py --checkpoint ViT-B-16.pt \\
        [--model ViT-B-16] [--classes voc|coco|FILE] [--bg voc|coco|none|FILE]
        [--template 'a clean origami {}.' ...] --out clip_vitb16_text_voc.pth

Needs ``open_clip`` (``pip install -e .[clip]``): its text tower and its
bundled tokenizer vocabulary; nothing is downloaded. ``--checkpoint``: an
OpenAI / open_clip state dict (``.pt`` / ``.pth`` / ``.bin`` /
``.safetensors``; OpenAI's TorchScript ``ViT-B-16.pt`` only with
``--trust-checkpoint``), read with the project's safe loader.
``--random-init SEED`` uses an untrained tower instead (tests, dry runs).

Defaults are the references': the single template ``'a clean origami
{}.'``, CLIP-ES's VOC words (``bird avian``, ``person with
clothes,people,human``, ...) and its 25 VOC / 23 COCO background words. The
file holds ``fg`` (K, D) and ``bg`` (M, D) unit rows with their words,
templates and provenance (architecture, checkpoint path and SHA-256,
``logit_scale``); see :mod:`mmseg_wsss.models.utils.clip_text`.
"""
import argparse
import os.path as osp
import sys

import torch

import mmseg_wsss  # noqa: F401  (safe checkpoint loading)
from mmseg_wsss.models.utils.clip_text import (DEFAULT_TEMPLATES,
                                               background_words,
                                               class_words, zeroshot_rows)
from mmseg_wsss.models.backbones.clip_vit import read_clip_checkpoint
from mmseg_wsss.utils import add_trust_argument, apply_trust_arguments
from mmseg_wsss.utils.checkpoint import sha256_file
from mmseg_wsss.utils.run_guard import write_atomic


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument('--checkpoint', help='CLIP weights (state dict)')
    src.add_argument('--random-init', type=int, metavar='SEED',
                     help='an untrained tower (tests, dry runs)')
    parser.add_argument('--model', default='ViT-B-16',
                        help='open_clip architecture (ViT-B-16, ViT-L-14)')
    parser.add_argument('--classes', default='voc',
                        help='voc, coco or a file of class words')
    parser.add_argument('--bg', default=None,
                        help='background words: voc, coco, none or a file '
                        '(default: voc for --classes voc, coco for coco, '
                        'none otherwise)')
    parser.add_argument('--template', action='append',
                        help='prompt template with {} (repeatable; default '
                        f'{DEFAULT_TEMPLATES[0]!r})')
    parser.add_argument('--out', required=True)
    add_trust_argument(parser)
    return parser.parse_args(argv)


def build_clip(model_name: str, checkpoint=None, seed=None):
    """(open_clip model, tokenizer) with the checkpoint's weights (text
    tower and logit scale strictly; the image tower when present)."""
    try:
        import open_clip
    except ImportError:
        sys.exit('open_clip is needed for the text tower and tokenizer: '
                 "pip install -e '.[clip]' (or pip install open-clip-torch)")
    if seed is not None:
        torch.manual_seed(seed)
    model = open_clip.create_model(model_name, pretrained=None)
    tokenizer = open_clip.get_tokenizer(model_name)
    if checkpoint is not None:
        try:
            state = read_clip_checkpoint(checkpoint)
        except ValueError as e:  # an untrusted TorchScript archive
            sys.exit(str(e))
        text = {k: v for k, v in state.items()
                if not k.startswith('visual.')}
        missing, unexpected = model.load_state_dict(text, strict=False)
        missing = [k for k in missing if not k.startswith('visual.')]
        if missing:
            sys.exit(f'{checkpoint} does not fit open_clip {model_name}: '
                     f'missing text keys {missing[:5]}... (another '
                     'architecture? --model)')
    return model.eval(), tokenizer


def main(argv=None):
    args = parse_args(argv)
    apply_trust_arguments(args.trust_checkpoint)
    words = class_words(args.classes)
    bg_spec = args.bg or (args.classes if args.classes in ('voc', 'coco')
                          else 'none')
    bg_words = background_words(bg_spec)
    templates = args.template or list(DEFAULT_TEMPLATES)
    for t in templates:
        if '{}' not in t:
            sys.exit(f'--template {t!r} has no {{}} for the class word')
    model, tokenizer = build_clip(args.model, args.checkpoint,
                                  args.random_init)
    fg = zeroshot_rows(model.encode_text, tokenizer, words, templates)
    bg = zeroshot_rows(model.encode_text, tokenizer, bg_words, templates) \
        if bg_words else fg.new_zeros(0, fg.shape[1])
    bank = dict(
        fg=fg, bg=bg, fg_names=list(words), bg_names=list(bg_words),
        templates=list(templates), model=args.model,
        checkpoint=(osp.abspath(args.checkpoint) if args.checkpoint
                    else f'random (seed {args.random_init})'),
        checkpoint_sha256=(sha256_file(args.checkpoint) if args.checkpoint
                           else 'random'),
        logit_scale=float(model.logit_scale.exp()))
    import io
    buf = io.BytesIO()
    torch.save(bank, buf)
    write_atomic(args.out, buf.getvalue())
    print(f'wrote {args.out}: {len(words)} class rows, {len(bg_words)} '
          f'background rows, {fg.shape[1]}-d, templates {templates}')


if __name__ == '__main__':
    main()
