"""Data sets in memory: readers, splits, packing and batched augmentation."""

from .dataset import FaceDataset
from .labels import BASIC7, CANONICAL

__all__ = ["BASIC7", "CANONICAL", "FaceDataset"]
