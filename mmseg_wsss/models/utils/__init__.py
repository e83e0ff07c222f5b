from .clip_text import (COCO_BG_WORDS, VOC_BG_WORDS, VOC_WORDS, coco_words,
                        load_text_bank, zeroshot_rows)

__all__ = ['VOC_WORDS', 'VOC_BG_WORDS', 'COCO_BG_WORDS', 'coco_words',
           'load_text_bank', 'zeroshot_rows']
