"""Multi-task architectures of the five papers, split into a shared encoder and per-task heads.

>>> import mtl_models
>>> model = mtl_models.create("mtan", tasks={"segmentation": 13, "depth": 1, "normal": 3}, width=0.25)
>>> z = model.encode(images)            # shared representation (tensor or tuple of tensors)
>>> predictions = model.decode(z)       # {task: prediction}; model(images) is the same
>>> model.shared_parameters(), model.task_parameters("depth")
"""

from .base import MultiTaskModel, Representation
from .celeba import CelebACNN, CelebAResNet18
from .deeplab import DeepLabV3, DeepLabV3Plus
from .mpnn import MPNN
from .mtan import MTAN
from .multimnist import MultiLeNet, MultiMNISTResNet18
from .office import OfficeResNet18
from .pspnet import PSPNet
from .registry import create, names, options
from .segnet import SegNetSplit
from .toy import ToyMLP

__version__ = "0.1.0"

__all__ = [
    "MPNN",
    "MTAN",
    "CelebACNN",
    "CelebAResNet18",
    "DeepLabV3",
    "DeepLabV3Plus",
    "MultiLeNet",
    "MultiMNISTResNet18",
    "MultiTaskModel",
    "OfficeResNet18",
    "PSPNet",
    "Representation",
    "SegNetSplit",
    "ToyMLP",
    "__version__",
    "create",
    "names",
    "options",
]
