"""QM9 from qm9pack-format CSVs: targets in reference units, PyG features, split file, normalisation."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")
pytest.importorskip("torch_geometric")

import mtl_data
from mtl_data._qm9_rdkit import molecule_graph
from mtl_data.qm9 import TARGETS, UNITS, read_source

HAR2MEV = 27.211386246 * 1000
N_FIXTURE = 60


def _qm9pack_dir() -> Path:
    spec = importlib.util.find_spec("qm9pack")
    if spec is None:
        pytest.skip("qm9pack not installed: the fixture copies its first rows")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The first 60 molecules of QM9 spread over three CSVs in qm9pack's exact format."""
    out = tmp_path_factory.mktemp("qm9src")
    with open(_qm9pack_dir() / "qm9_part1.csv") as handle:
        header = handle.readline()
        lines = [handle.readline() for _ in range(N_FIXTURE)]  # one molecule per line, copied verbatim
    for part, chunk in enumerate((lines[:20], lines[20:40], lines[40:]), start=1):
        (out / f"qm9_part{part}.csv").write_text(header + "".join(chunk))
    return out


def _create(source: Path, cache: Path, split: str = "train", **options):
    return mtl_data.create(
        "qm9", split=split, root=cache, source_dir=source, train_size=40, val_size=10, workers=1, **options
    )


def test_targets_in_reference_units(source):
    parsed = read_source(source)
    assert parsed["y"].shape == (N_FIXTURE, 11) and parsed["ids"][:3].tolist() == [1, 2, 3]
    methane = parsed["y"][0]
    # Row 1 (CH4): HOMO -0.3877 Ha, U0 -40.47893 Ha, atom references H -0.500273, C -37.846772 Ha.
    assert methane[TARGETS.index("homo")] == pytest.approx(-0.3877 * HAR2MEV)
    assert methane[TARGETS.index("zpve")] == pytest.approx(0.044749 * HAR2MEV)
    expected_u0 = (-40.47893 - (4 * -0.500273 + -37.846772)) * HAR2MEV
    assert methane[TARGETS.index("U0")] == pytest.approx(expected_u0, abs=0.5)
    assert methane[TARGETS.index("mu")] == 0.0 and methane[TARGETS.index("c_v")] == pytest.approx(6.469)
    assert methane[TARGETS.index("r2")] == pytest.approx(35.3641)
    assert UNITS["U0"] == "meV" and UNITS["alpha"] == "a0^3"


def test_methane_graph_has_pyg_features(source, tmp_path):
    for split in ("train", "val", "test"):  # find methane (QM9 id 1) wherever the split put it
        ds = _create(source, tmp_path, split=split, graph="bonds", normalize=False)
        position = {int(ds._cache["ids"][int(p)]): i for i, p in enumerate(ds.positions)}
        if 1 in position:
            break
    data = ds[position[1]]
    assert data.x.shape == (5, 11) and data.z.tolist() == [6, 1, 1, 1, 1]
    carbon = data.x[0].tolist()
    assert carbon == [0, 1, 0, 0, 0, 6, 0, 0, 0, 1, 4]  # C one-hot, Z, not aromatic, sp3, 4 hydrogens
    assert data.x[1].tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]
    assert data.edge_index.shape == (2, 8) and data.edge_attr.shape == (8, 4)
    assert torch.equal(data.edge_attr[:, 0], torch.ones(8))  # all single bonds
    key = data.edge_index[0] * 5 + data.edge_index[1]
    assert torch.equal(key, key.sort().values)  # PyG's edge order
    assert torch.allclose(data.y[0], torch.tensor(read_source(source)["y"][0], dtype=torch.float32))


def test_aromatic_ring_and_geometry_fallback():
    from rdkit import Chem
    from rdkit.Chem import AllChem

    mol = Chem.AddHs(Chem.MolFromSmiles("c1ccccc1O"))  # phenol
    AllChem.EmbedMolecule(mol, randomSeed=0)
    elements = [a.GetSymbol() for a in mol.GetAtoms()]
    xyz = mol.GetConformer().GetPositions()
    graph = molecule_graph(elements, xyz, "c1ccccc1O")
    assert graph["route"] == 0
    x = graph["x"]
    assert x[:6, 6].tolist() == [1] * 6 and x[6, 6] == 0  # ring carbons aromatic, O not
    assert x[:6, 8].tolist() == [1] * 6  # sp2
    assert x[6, 10] == 1  # the hydroxyl hydrogen
    assert (graph["edge_type"] == 3).sum() == 12  # 6 aromatic bonds, both directions
    # A SMILES whose atom order does not match the XYZ block: rebuilt from the geometry instead.
    fallback = molecule_graph(elements, xyz, "Oc1ccccc1")
    assert fallback["route"] == 1
    assert fallback["x"][:, 6].sum() == 6 and fallback["edge_index"].shape == graph["edge_index"].shape


def test_complete_graph_matches_reference_transform(source, tmp_path):
    ds = _create(source, tmp_path)
    bonds = _create(source, tmp_path, graph="bonds")
    data, raw = ds[3], bonds[3]
    n = data.num_nodes
    assert data.edge_index.shape == (2, n * (n - 1)) and data.edge_attr.shape == (n * (n - 1), 5)
    assert not bool((data.edge_index[0] == data.edge_index[1]).any())
    distance = (data.pos[data.edge_index[1]] - data.pos[data.edge_index[0]]).norm(dim=-1)
    assert torch.allclose(data.edge_attr[:, 4], distance)
    bonded = {(int(a), int(b)): raw.edge_attr[k] for k, (a, b) in enumerate(raw.edge_index.t())}
    for k, (a, b) in enumerate(data.edge_index.t().tolist()):
        expected = bonded.get((a, b), torch.zeros(4))
        assert torch.equal(data.edge_attr[k, :4], expected)


def test_split_written_reused_and_normalisation(source, tmp_path):
    train, val, test = (_create(source, tmp_path, split=s) for s in ("train", "val", "test"))
    assert (len(train), len(val), len(test)) == (40, 10, 10)
    ids = {
        s: {int(d._cache["ids"][int(p)]) for p in d.positions} for s, d in (("tr", train), ("va", val), ("te", test))
    }
    assert not ids["tr"] & ids["va"] and not ids["tr"] & ids["te"] and not ids["va"] & ids["te"]
    split_file = tmp_path / "qm9_split_40_10.json"
    stored = json.loads(split_file.read_text())
    assert set(stored["train"]) == ids["tr"] and set(stored["test"]) == ids["te"]
    # Normalised training targets: mean 0, std 1; the task scale brings errors back to table units.
    ys = torch.cat([train[i].y for i in range(len(train))])
    assert torch.allclose(ys.mean(0), torch.zeros(11), atol=1e-5)
    assert torch.allclose(ys.std(0), torch.ones(11), atol=1e-5)
    assert train.tasks["homo"].scale == pytest.approx(float(train.target_std[2]))
    assert list(train.tasks) == list(TARGETS) == mtl_data.task_names("qm9") and not train.is_standin
    assert torch.allclose(train.denormalize(train[0].y.double()), train._cache["y"][int(train.positions[0])])
    # Val/test are normalised with the *training* statistics.
    assert torch.equal(val.target_mean, train.target_mean)
    # A corrupted split file is reported, not silently replaced.
    split_file.write_text(json.dumps({"train": [1], "val": [2], "test": [3]}))
    with pytest.raises(ValueError, match="does not partition"):
        _create(source, tmp_path)


def test_subset_is_a_prefix_of_each_split(source, tmp_path):
    full = {s: _create(source, tmp_path / "a", split=s) for s in ("train", "test")}
    sub = {s: _create(source, tmp_path / "b", split=s, subset=20) for s in ("train", "test")}
    for s in ("train", "test"):
        full_ids = [int(full[s]._cache["ids"][int(p)]) for p in full[s].positions]
        sub_ids = [int(sub[s]._cache["ids"][int(p)]) for p in sub[s].positions]
        assert sub_ids == full_ids[: len(sub_ids)]
    assert len(sub["train"]) + len(sub["test"]) < 20
    assert (tmp_path / "b" / "qm9_processed_v1_subset20_40_10.pt").is_file()


def test_prepare_reports_and_checks_sources(source, tmp_path):
    report = mtl_data.prepare("qm9", root=tmp_path, source_dir=source, train_size=40, val_size=10, strict=False)
    assert report.counts == {"train": 40, "val": 10, "test": 10} and report.manifest_created
    assert any("smiles" in note for note in report.notes)
    with pytest.raises(ValueError, match="QM9 has 130831"):
        mtl_data.prepare("qm9", root=tmp_path, source_dir=source, train_size=40, val_size=10)


def test_prepare_with_a_subset_featurises_only_those_molecules(source, tmp_path, monkeypatch):
    import mtl_data.qm9 as qm9

    featurised: list[int] = []
    process = qm9._process
    monkeypatch.setattr(qm9, "_process", lambda rows, workers: featurised.append(len(rows)) or process(rows, workers))
    report = mtl_data.prepare(
        "qm9", root=tmp_path, source_dir=source, train_size=40, val_size=10, strict=False, subset=20
    )
    # proportional prefixes of the 40/10/10 split: round(20 * 40/60) = 13, round(20 * 10/60) = 3, the rest 4
    assert report.counts == {"train": 13, "val": 3, "test": 4} and featurised == [20]
    assert not (tmp_path / "qm9_processed_v1.pt").exists()
    assert any("20 of 60 molecules" in note for note in report.notes)
    # the dataset of that subset reads the cache just built: nothing is featurised again
    train = _create(source, tmp_path, subset=20)
    assert len(train) == 13 and featurised == [20]
    # the source is still counted whole: the 60-molecule copy is refused without strict=False
    with pytest.raises(ValueError, match="60 molecules, QM9 has 130831"):
        mtl_data.prepare("qm9", root=tmp_path, source_dir=source, train_size=40, val_size=10, subset=20)


def test_bad_rows_are_named(source, tmp_path):
    broken = tmp_path / "src"
    broken.mkdir()
    for name in ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv"):
        (broken / name).write_text((source / name).read_text())
    lines = (broken / "qm9_part2.csv").read_text().splitlines()
    lines[3] = lines[3].replace(",6.", ",six.", 1) if ",6." in lines[3] else lines[3][: len(lines[3]) // 2]
    (broken / "qm9_part2.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"qm9_part2\.csv:4"):
        read_source(broken)
    (broken / "qm9_part3.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"qm9_part3\.csv"):
        read_source(broken)


def test_invalid_options(source, tmp_path):
    with pytest.raises(ValueError, match="unknown graph 'knn'"):
        _create(source, tmp_path, graph="knn")
    with pytest.raises(ValueError, match="subset must be between"):
        _create(source, tmp_path, subset=10**6)
    assert np.isfinite(read_source(source)["y"]).all()


def test_worker_processes_give_the_same_graphs(source, monkeypatch):
    import mtl_data.qm9 as qm9

    parsed = read_source(source)
    inline = qm9._process(parsed["rows"], workers=1)
    monkeypatch.setattr(qm9, "_CHUNK", 25)  # 60 molecules -> 3 chunks over 2 spawned workers
    pooled = qm9._process(parsed["rows"], workers=2)
    assert inline.keys() == pooled.keys()
    for key in inline:
        assert np.array_equal(inline[key], pooled[key]), key
