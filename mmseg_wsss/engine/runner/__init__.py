from .wsss_val_loop import WSSSValLoop

__all__ = ['WSSSValLoop']
