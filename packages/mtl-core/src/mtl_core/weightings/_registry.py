from ..registry import Registry
from .base import Weighting

WEIGHTINGS: Registry[Weighting] = Registry("weighting")
