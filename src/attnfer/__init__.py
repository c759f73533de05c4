"""attnfer: facial expression recognition with attention."""

__version__ = "0.1.0"
