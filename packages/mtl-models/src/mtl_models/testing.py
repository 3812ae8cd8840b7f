"""Benchmark configurations of the five papers and random inputs of the right layout.

Used by the package's tests and timing script, and handy for smoke tests of code built on the models:

>>> from mtl_models.testing import BENCHMARKS, example_input
>>> cfg = BENCHMARKS["mtan/nyuv2"]
>>> model = cfg.create(width=0.25)
>>> predictions = model(example_input(cfg, batch_size=2))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from .base import MultiTaskModel
from .registry import create

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs", "Big_Lips", "Big_Nose",
    "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses",
    "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
    "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks",
    "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick",
    "Wearing_Necklace", "Wearing_Necktie", "Young",
)  # fmt: skip
QM9_TARGETS = ("mu", "alpha", "homo", "lumo", "r2", "zpve", "U0", "U", "H", "G", "c_v")

NYUV2_TASKS = {"segmentation": 13, "depth": 1, "normal": 3}
CITYSCAPES2_TASKS = {"segmentation": 7, "depth": 1}
CITYSCAPES3_TASKS = {"segmentation": 19, "instance": 2, "disparity": 1}
MULTIMNIST_TASKS = {"left": 10, "right": 10}
CELEBA_TASKS = dict.fromkeys(CELEBA_ATTRIBUTES, 1)
QM9_TASKS = dict.fromkeys(QM9_TARGETS, 1)
OFFICE31_TASKS = {"amazon": 31, "dslr": 31, "webcam": 31}
OFFICEHOME_TASKS = {"Art": 65, "Clipart": 65, "Product": 65, "Real_World": 65}
TOY_TASKS = {"depth_a": 1, "depth_b": 1}


@dataclass(frozen=True)
class Benchmark:
    """One model on one benchmark: its tasks, one sample's input shape and the model options."""

    model: str
    dataset: str
    tasks: dict[str, int]
    input_shape: tuple[int, ...]  # one image (C, H, W) or one toy sample; () for QM9 graphs
    options: dict[str, Any] = field(default_factory=dict)
    multi_input: bool = False

    @property
    def key(self) -> str:
        return f"{self.model}/{self.dataset}"

    def create(self, **overrides: Any) -> MultiTaskModel:
        return create(self.model, tasks=self.tasks, **{**self.options, **overrides})


_ALL = [
    Benchmark("segnet_split", "nyuv2", NYUV2_TASKS, (3, 288, 384)),
    Benchmark("segnet_split", "cityscapes", CITYSCAPES2_TASKS, (3, 128, 256)),
    Benchmark("mtan", "nyuv2", NYUV2_TASKS, (3, 288, 384)),
    Benchmark("mtan", "cityscapes", CITYSCAPES2_TASKS, (3, 128, 256)),
    Benchmark("deeplabv3", "nyuv2", NYUV2_TASKS, (3, 288, 384)),
    Benchmark("deeplabv3", "cityscapes", CITYSCAPES2_TASKS, (3, 128, 256)),
    Benchmark("deeplabv3plus", "nyuv2", NYUV2_TASKS, (3, 288, 384)),
    Benchmark("deeplabv3plus", "cityscapes", CITYSCAPES2_TASKS, (3, 128, 256)),
    Benchmark("pspnet", "nyuv2", NYUV2_TASKS, (3, 288, 384)),
    Benchmark("pspnet", "cityscapes3", CITYSCAPES3_TASKS, (3, 256, 512), {"output_resolution": "feature"}),
    Benchmark("resnet18_multimnist", "multimnist", MULTIMNIST_TASKS, (1, 36, 36)),
    Benchmark("multilenet", "multimnist", MULTIMNIST_TASKS, (1, 36, 36), {"input_size": 36}),
    Benchmark("resnet18_office", "office31", OFFICE31_TASKS, (3, 224, 224), multi_input=True),
    Benchmark("resnet18_office", "officehome", OFFICEHOME_TASKS, (3, 224, 224), multi_input=True),
    Benchmark("celeba_cnn", "celeba", CELEBA_TASKS, (3, 64, 64)),
    Benchmark("resnet18_celeba", "celeba", CELEBA_TASKS, (3, 64, 64)),
    Benchmark("mpnn", "qm9", QM9_TASKS, ()),
    Benchmark("toy_mlp", "toy", TOY_TASKS, (1,)),
]
BENCHMARKS: dict[str, Benchmark] = {b.key: b for b in _ALL}


def example_input(
    benchmark: Benchmark,
    batch_size: int,
    input_shape: tuple[int, ...] | None = None,
    generator: torch.Generator | None = None,
) -> Any:
    """A random batch in the layout the model expects (images, {task: images}, or a PyG batch).

    ``input_shape`` overrides the benchmark's sample shape (e.g. smaller images for quick tests).
    """
    shape = benchmark.input_shape if input_shape is None else input_shape
    if benchmark.model == "mpnn":
        return random_molecules(batch_size, generator=generator)
    if benchmark.multi_input:
        return {t: torch.randn(batch_size, *shape, generator=generator) for t in benchmark.tasks}
    return torch.randn(batch_size, *shape, generator=generator)


def random_molecules(
    num_graphs: int, min_atoms: int = 5, max_atoms: int = 20, generator: torch.Generator | None = None
) -> Any:
    """A torch_geometric batch of random QM9-like molecules: complete graphs, 11 node features, 5 edge
    features (one-hot bond type, or zeros for non-bonded pairs, plus the interatomic distance)."""
    from torch_geometric.data import Batch, Data

    graphs = []
    for _ in range(num_graphs):
        n = int(torch.randint(min_atoms, max_atoms + 1, (1,), generator=generator))
        pos = torch.randn(n, 3, generator=generator)
        src, dst = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        keep = src != dst
        edge_index = torch.stack((src[keep], dst[keep]))
        bonds = torch.zeros(edge_index.shape[1], 4)
        bonded = torch.rand(edge_index.shape[1], generator=generator) < 0.3
        bond_type = torch.randint(0, 4, (edge_index.shape[1],), generator=generator)
        bonds[bonded, bond_type[bonded]] = 1.0
        distance = torch.cdist(pos, pos)[edge_index[0], edge_index[1]].unsqueeze(1)
        x = torch.rand(n, 11, generator=generator)
        graphs.append(
            Data(
                x=x,
                edge_index=edge_index,
                edge_attr=torch.cat((bonds, distance), dim=1),
                pos=pos,
                y=torch.randn(1, len(QM9_TARGETS), generator=generator),
            )
        )
    return Batch.from_data_list(graphs)
