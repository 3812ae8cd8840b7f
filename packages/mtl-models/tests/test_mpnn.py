"""The QM9 MPNN: optional torch-geometric dependency and graph-level properties."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import mtl_models
from mtl_models.testing import QM9_TASKS, random_molecules


def test_importing_the_package_does_not_need_torch_geometric() -> None:
    code = (
        "import sys; sys.modules['torch_geometric'] = None\n"
        "import mtl_models\n"
        "mtl_models.create('toy_mlp', tasks={'a': 1})\n"
        "try:\n"
        "    mtl_models.create('mpnn', tasks={'mu': 1})\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert "pip install 'mtl-models[graph]'" in result.stdout


def test_missing_torch_geometric_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "torch_geometric", None)
    monkeypatch.setitem(sys.modules, "torch_geometric.nn", None)
    with pytest.raises(ImportError, match=r"mtl-models\[graph\]"):
        mtl_models.create("mpnn", tasks=QM9_TASKS)


@pytest.fixture
def model() -> mtl_models.MPNN:
    pytest.importorskip("torch_geometric")
    return mtl_models.create("mpnn", tasks=QM9_TASKS, width=0.5).eval()


def test_predictions_do_not_depend_on_batch_companions(model: mtl_models.MPNN) -> None:
    """Each molecule is predicted the same alone as in a batch: the readout respects data.batch."""
    from torch_geometric.data import Batch

    batch = random_molecules(4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        together = model(batch)
        for i, molecule in enumerate(batch.to_data_list()):
            alone = model(Batch.from_data_list([molecule]))
            for task in QM9_TASKS:
                torch.testing.assert_close(alone[task], together[task][i : i + 1])


def test_predictions_are_invariant_to_atom_order(model: mtl_models.MPNN) -> None:
    from torch_geometric.data import Batch, Data

    molecule = random_molecules(1, generator=torch.Generator().manual_seed(1)).to_data_list()[0]
    perm = torch.randperm(molecule.num_nodes, generator=torch.Generator().manual_seed(2))
    inverse = torch.argsort(perm)
    permuted = Data(x=molecule.x[perm], edge_index=inverse[molecule.edge_index], edge_attr=molecule.edge_attr)
    with torch.no_grad():
        a, b = model(Batch.from_data_list([molecule])), model(Batch.from_data_list([permuted]))
    for task in QM9_TASKS:
        torch.testing.assert_close(a[task], b[task], rtol=1e-5, atol=1e-6)


def test_a_single_graph_without_batch_vector(model: mtl_models.MPNN) -> None:
    molecule = random_molecules(1, generator=torch.Generator().manual_seed(3)).to_data_list()[0]
    molecule.batch = None
    with torch.no_grad():
        out = model(molecule)
    assert all(out[t].shape == (1,) for t in QM9_TASKS)


def test_wrong_feature_sizes_are_explained(model: mtl_models.MPNN) -> None:
    molecule = random_molecules(1, generator=torch.Generator().manual_seed(4))
    molecule.edge_attr = molecule.edge_attr[:, :4]  # bond types without the distance
    with pytest.raises(ValueError, match=r"edge_attr of shape \(num_edges, 5\).*Distance"):
        model(molecule)
    molecule = random_molecules(1, generator=torch.Generator().manual_seed(4))
    molecule.x = molecule.x[:, :5]
    with pytest.raises(ValueError, match=r"data.x of shape \(num_nodes, 11\)"):
        model(molecule)
