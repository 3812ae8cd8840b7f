"""`mtl prepare <benchmark>` readies what the benchmark's runs read, with the benchmark's own dataset options."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from mtl_pipelines import grid

pytest.importorskip("rdkit")
pytest.importorskip("torch_geometric")


def _qm9_source(out: Path, molecules: int = 60) -> Path:
    """The first molecules of qm9pack's CSVs, copied verbatim into three files of its format."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None:
        pytest.skip("qm9pack not installed")
    with open(Path(next(iter(spec.submodule_search_locations))) / "data" / "qm9_part1.csv") as handle:
        header = handle.readline()
        lines = [handle.readline() for _ in range(molecules)]
    out.mkdir()
    for part, chunk in enumerate((lines[:20], lines[20:40], lines[40:]), start=1):
        (out / f"qm9_part{part}.csv").write_text(header + "".join(chunk))
    return out


def test_a_subset_benchmark_is_prepared_without_featurising_every_molecule(tmp_path, monkeypatch):
    source, cache = _qm9_source(tmp_path / "source"), tmp_path / "cache"
    options = {"subset": 20, "source_dir": str(source), "train_size": 40, "val_size": 10, "workers": 1}
    profile = {"name": "t", "benchmarks": {"qm9": {"dataset": {"name": "qm9", "root": str(cache), "options": options}}}}
    monkeypatch.setattr(grid, "load_profile", lambda name: profile)
    out = grid.prepare("qm9", profile="t", partial=True, stamp=str(tmp_path / "stamp.json"))
    # the subset's proportional prefixes of the 40 / 10 / 10 split (mtl_data.qm9.subset_ids): 13 / 3 / 4
    assert "prepared qm9: train 13, val 3, test 4" in out
    assert json.loads((tmp_path / "stamp.json").read_text())["counts"] == {"train": 13, "val": 3, "test": 4}
    assert (cache / "qm9_processed_v1_subset20_40_10.pt").is_file()
    assert not (cache / "qm9_processed_v1.pt").exists()  # before: every molecule was featurised first
    assert "20 of 60 molecules" in out
