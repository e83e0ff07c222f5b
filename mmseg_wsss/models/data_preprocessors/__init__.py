from .wsss_data_preprocessor import WSSSDataPreprocessor

__all__ = ['WSSSDataPreprocessor']
