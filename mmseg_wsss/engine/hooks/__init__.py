from .assignment_net_ema_hook import AssignmentNetEMAHook

__all__ = ['AssignmentNetEMAHook']
