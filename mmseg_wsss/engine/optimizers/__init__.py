from .trainable_only_constructor import TrainableOnlyOptimWrapperConstructor

__all__ = ['TrainableOnlyOptimWrapperConstructor']
