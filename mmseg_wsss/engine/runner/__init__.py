from .wsss_test_loop import WSSSTestLoop
from .wsss_val_loop import WSSSValLoop

__all__ = ['WSSSValLoop', 'WSSSTestLoop']
