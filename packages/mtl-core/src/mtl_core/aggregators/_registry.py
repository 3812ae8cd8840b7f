from ..registry import Registry
from .base import Aggregator

AGGREGATORS: Registry[Aggregator] = Registry("aggregator")
