"""Message-passing network for QM9 (Gilmer et al., ICML 2017), seeds 002/004's regression model.

Reference: ``experiments/quantum_chemistry/models.py`` of AvivNavon/nash-mtl, itself the PyTorch
Geometric ``examples/qm9_nn_conv.py``: linear embedding of the 11 node features to 64 units; three
rounds of an edge-conditioned convolution (``NNConv``, mean aggregation, edge network 5 -> 128 -> 64*64)
followed by a GRU sharing its weights across rounds; ``Set2Set`` readout (3 steps); linear 128 -> 64 +
ReLU. One linear 64 -> 1 head per target. The reference feeds complete graphs whose 5 edge features are
the 4 bond types plus the interatomic distance (``Complete`` + ``T.Distance(norm=False)`` transforms).

torch-geometric is an optional dependency (``pip install 'mtl-models[graph]'``); it is imported only
when an ``MPNN`` is built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import (
    MultiTaskModel,
    Representation,
    scalar_outputs,
    scaled,
    seeded,
    validate_positive_int,
    validate_width,
)

MESSAGE_PASSING_STEPS = 3
SET2SET_STEPS = 3


def _require_torch_geometric() -> Any:
    try:
        import torch_geometric.nn as pyg_nn
    except ImportError as error:
        raise ImportError(
            "the MPNN model needs torch-geometric, an optional dependency of mtl-models: "
            "pip install 'mtl-models[graph]'"
        ) from error
    return pyg_nn


class _MPNNEncoder(nn.Module):
    def __init__(self, node_features: int, edge_features: int, dim: int, edge_hidden: int) -> None:
        super().__init__()
        pyg_nn = _require_torch_geometric()
        self.node_features, self.edge_features = node_features, edge_features
        self.lin0 = nn.Linear(node_features, dim)
        edge_network = nn.Sequential(
            nn.Linear(edge_features, edge_hidden), nn.ReLU(), nn.Linear(edge_hidden, dim * dim)
        )
        self.conv = pyg_nn.NNConv(dim, dim, edge_network, aggr="mean")
        self.gru = nn.GRU(dim, dim)
        self.set2set = pyg_nn.Set2Set(dim, processing_steps=SET2SET_STEPS)
        self.lin1 = nn.Linear(2 * dim, dim)

    def forward(self, data: Any) -> torch.Tensor:
        x, edge_index, edge_attr = data.x, data.edge_index, data.edge_attr
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.node_features:
            raise ValueError(
                f"MPNN expects data.x of shape (num_nodes, {self.node_features}), got "
                f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}"
            )
        if not isinstance(edge_attr, torch.Tensor) or edge_attr.dim() != 2 or edge_attr.shape[1] != self.edge_features:
            raise ValueError(
                f"MPNN expects data.edge_attr of shape (num_edges, {self.edge_features}) (4 bond types + distance, "
                "from the Complete + Distance(norm=False) transforms), got "
                f"{tuple(edge_attr.shape) if isinstance(edge_attr, torch.Tensor) else type(edge_attr).__name__}"
            )
        batch = getattr(data, "batch", None)
        if batch is None:  # a single graph
            batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
        dtype = self.lin0.weight.dtype  # follow the parameters (float32, or float64 for checks)
        out = F.relu(self.lin0(x.to(dtype)))
        h = out.unsqueeze(0)
        for _ in range(MESSAGE_PASSING_STEPS):
            m = F.relu(self.conv(out, edge_index, edge_attr.to(dtype)))
            out, h = self.gru(m.unsqueeze(0), h)
            out = out.squeeze(0)
        return F.relu(self.lin1(self.set2set(out, batch)))


class MPNN(MultiTaskModel):
    """NNConv + GRU + Set2Set message-passing network with one linear head per QM9 target.

    ``encode(batch)`` takes a torch_geometric ``Data``/``Batch`` and returns the (num_graphs, 64w)
    molecule features; each head returns shape (num_graphs,).

    Args:
        tasks: ``{target: 1}``, e.g. the 11 targets ``mu, alpha, homo, lumo, r2, zpve, U0, U, H, G, c_v``.
        width: multiplier of the hidden size 64 and the edge network's 128 units (1.0 = reference).
        node_features: node feature size (11 in PyG's QM9).
        edge_features: edge feature size (5 with the reference transforms).
        seed: seed of the parameter initialisation.
    """

    def __init__(
        self,
        tasks: Mapping[str, int],
        width: float = 1.0,
        node_features: int = 11,
        edge_features: int = 5,
        seed: int = 0,
    ) -> None:
        super().__init__(tasks)
        width = validate_width(width)
        validate_positive_int("node_features", node_features)
        validate_positive_int("edge_features", edge_features)
        with seeded(seed):
            self.encoder = _MPNNEncoder(node_features, edge_features, scaled(64, width), scaled(128, width))
            dim = self.encoder.lin1.out_features
            self.heads = nn.ModuleDict({t: nn.Linear(dim, d) for t, d in self.tasks.items()})

    def encode(self, x: Any) -> torch.Tensor:
        return self.encoder(x)

    def decode(self, z: Representation, tasks: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        if not isinstance(z, torch.Tensor) or z.dim() != 2:
            raise ValueError(f"MPNN.decode expects a (num_graphs, features) tensor, got {type(z).__name__}")
        return {t: scalar_outputs(self.heads[t](z), self.tasks[t]) for t in self.selected_tasks(tasks)}
