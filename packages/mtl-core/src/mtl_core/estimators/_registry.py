from ..registry import Registry
from .base import Estimator

ESTIMATORS: Registry[Estimator] = Registry("estimator")
