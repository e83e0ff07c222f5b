from .metrics import *  # noqa: F401,F403
from .crf import DenseCRF, cam_probs  # noqa: F401
