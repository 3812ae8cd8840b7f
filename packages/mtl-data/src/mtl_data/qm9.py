"""QM9 (130,831 molecules) from qm9pack's CSVs as PyG graphs: the 11-task protocol of Nash-MTL/SAMO/ConsMTL.

Source: ``<qm9pack package dir>/data/qm9_part{1,2,3}.csv`` (found with ``importlib.util.find_spec``;
``import qm9pack`` itself needs ``pkg_resources``, which current setuptools lacks), or any directory
holding files in that format (``source_dir=``).

Targets (seed 002 sec. 6.2, AvivNavon/nash-mtl ``experiments/quantum_chemistry``): PyG QM9 targets
0, 1, 2, 3, 5, 6, 12, 13, 14, 15, 11 in the units of the reference tables:

==========  =======================================  ==============
task        quantity                                 unit
==========  =======================================  ==============
mu          dipole moment                            D
alpha       isotropic polarizability                 a0^3
homo, lumo  orbital energies                         meV
r2          electronic spatial extent                a0^2
zpve        zero-point vibrational energy            meV
U0, U, H, G atomisation energies (0 K / 298.15 K)    meV
c_v         heat capacity at 298.15 K                cal/(mol K)
==========  =======================================  ==============

Atomisation energies subtract PyG's per-atom reference energies (``torch_geometric.datasets.qm9``).
Targets are normalised with the training split's mean and standard deviation (as the reference
``scale_target``); each task's :class:`~mtl_data.tasks.RegressionTask` carries the std so its MAE is
reported in the table unit.

Graphs: PyG-QM9 node features (11) and bond types, rebuilt with rdkit (:mod:`mtl_data._qm9_rdkit`).
``graph="complete"`` (default) returns the reference protocol's input: a complete directed graph
without self-loops whose ``edge_attr`` is the bond one-hot (zeros for non-bonded pairs) followed by
the interatomic distance (nash-mtl's ``Complete`` + ``T.Distance(norm=False)``); ``graph="bonds"``
returns PyG's bond graph (``edge_attr`` = 4-dim one-hot).

Split: a keyed permutation of all molecules; the first 110,000 train, the next 10,000 validation, the
rest (10,831) test (seed 002 sec. 6.2). It is written to ``<root>/qm9_split_<train>_<val>.json`` (QM9
molecule ids) and reused. ``subset=N`` keeps N molecules, drawn from each split in proportion (prefixes
of the full splits, so a subset's test molecules are test molecules of the full protocol).

Preparation (parse + rdkit for all molecules) runs once, in ``workers`` processes, and is cached in
``<root>/qm9_processed_v1.pt`` (about 95 MB); see the package README for the measured time. Without that
cache, a ``subset`` dataset (and ``prepare_qm9(subset=N)``) featurises only its own molecules, cached in
``<root>/qm9_processed_v1_subset<N>_<train>_<val>.pt``.
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import json
import multiprocessing
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mtl_data._io import atomic_writer, write_json_atomic
from mtl_data.base import Batching, MTLDataset, PrepareReport, check_split
from mtl_data.manifest import record_or_verify
from mtl_data.splits import stable_permutation
from mtl_data.tasks import RegressionTask

TARGETS = ("mu", "alpha", "homo", "lumo", "r2", "zpve", "U0", "U", "H", "G", "c_v")
UNITS = {
    "mu": "D",
    "alpha": "a0^3",
    "homo": "meV",
    "lumo": "meV",
    "r2": "a0^2",
    "zpve": "meV",
    "U0": "meV",
    "U": "meV",
    "H": "meV",
    "G": "meV",
    "c_v": "cal/(mol K)",
}
SOURCE_FILES = ("qm9_part1.csv", "qm9_part2.csv", "qm9_part3.csv")
NUM_MOLECULES = 130_831
TRAIN_SIZE, VAL_SIZE = 110_000, 10_000
CACHE_VERSION = 1
CACHE_NAME = f"qm9_processed_v{CACHE_VERSION}.pt"
_HINT = "Install qm9pack (pip install qm9pack) or pass source_dir= a directory with qm9_part{1,2,3}.csv."

# CSV column of each quantity; energies in Hartree.
_COLUMNS = {
    "mu": "Dipole_debye",
    "alpha": "Polarizability_bohr3",
    "homo": "HOMO_au",
    "lumo": "LUMO_au",
    "r2": "R2_bohr2",
    "zpve": "ZPVE_au",
    "U0": "InternalEnergy_0K_au",
    "U": "InternalEnergy_298K_au",
    "H": "Enthalphy_298K_au",  # sic, qm9pack's spelling
    "G": "GibbsFreeEnergy_298K_au",
    "c_v": "Heatcapacity_Cv_cal_mol_K",
}
_GRAPH_COLUMNS = ("XYZ_file", "Index", "SMILES", "N_atoms", "Stoichiometry", "Elements", "XYZ_Ang")
_ENERGY_TARGETS = ("homo", "lumo", "zpve", "U0", "U", "H", "G")
_ATOMIZATION_TARGETS = {"U0": 7, "U": 8, "H": 9, "G": 10}  # PyG target index of the atomref table
_CHUNK = 2000  # molecules per worker task


def default_source_dir() -> Path:
    """``<qm9pack>/data`` located without importing qm9pack."""
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"qm9pack is not installed. {_HINT}")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def default_cache_dir() -> Path:
    base = os.environ.get("MTL_DATA_CACHE") or Path.home() / ".cache" / "mtl_data"
    return Path(base) / "qm9"


def _source_paths(source_dir: Path) -> list[Path]:
    paths = [source_dir / name for name in SOURCE_FILES]
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"QM9 source file {path} is missing. {_HINT}")
    return paths


def _fingerprint(paths: Sequence[Path]) -> str:
    # Size and mtime: cheap enough for every create(); prepare() verifies SHA-256 checksums.
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in paths)


def _reference_energies_mev() -> dict[str, np.ndarray]:
    """Per-element (H, C, N, O, F) reference energies in meV for U0, U, H, G (PyG's ``atomrefs``)."""
    from torch_geometric.datasets.qm9 import atomrefs

    return {
        name: 1000.0 * np.array(atomrefs[index][:5], dtype=np.float64) for name, index in _ATOMIZATION_TARGETS.items()
    }


def _to_float_array(where: list[str], fields: list[list[str]], what: str) -> np.ndarray:
    """Convert rows of numeric strings at once; on failure, find and name the offending row."""
    try:
        return np.array(fields, dtype=np.float64)
    except ValueError:
        for place, row in zip(where, fields):
            try:
                np.array(row, dtype=np.float64)
            except ValueError as error:
                raise ValueError(f"{place}: bad {what} {row} ({error})") from error
        raise


def read_source(source_dir: Path) -> dict[str, Any]:
    """Parse the CSVs: molecule ids, targets in table units and the raw graph fields (still text).

    Raises ``ValueError`` naming ``file:line`` and the column for a malformed row.
    """
    from torch_geometric.datasets.qm9 import HAR2EV

    where: list[str] = []
    raw_targets: list[list[str]] = []
    stoichiometry: list[list[str]] = []
    ids: list[str] = []
    rows: list[tuple[str, str, str, str, str]] = []
    for path in _source_paths(source_dir):
        with open(path, newline="") as handle:
            reader = csv.reader(handle)
            try:
                header = next(reader)
            except StopIteration:
                raise ValueError(f"{path}: empty file (expected a qm9pack CSV with a header row)") from None
            missing = [c for c in (*_GRAPH_COLUMNS, *_COLUMNS.values()) if c not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}; is this a qm9pack CSV?")
            column = {name: header.index(name) for name in header}
            target_columns = [column[_COLUMNS[name]] for name in TARGETS]
            c_elements, c_xyz, c_smiles, c_atoms = (column[k] for k in ("Elements", "XYZ_Ang", "SMILES", "N_atoms"))
            c_index, c_stoichiometry = column["Index"], column["Stoichiometry"]
            for line, row in enumerate(reader, start=2):
                place = f"{path}:{line}"
                if len(row) != len(header):
                    raise ValueError(f"{place}: {len(row)} fields, the header has {len(header)} (truncated file?)")
                where.append(place)
                raw_targets.append([row[c] for c in target_columns])
                stoichiometry.append(row[c_stoichiometry].strip("[] ").split(","))
                ids.append(row[c_index])
                rows.append((place, row[c_elements], row[c_xyz], row[c_smiles], row[c_atoms]))
    if not rows:
        raise ValueError(f"{source_dir}: the QM9 CSVs hold no molecule")
    if any(len(s) != 5 for s in stoichiometry):
        bad = next(p for p, s in zip(where, stoichiometry) if len(s) != 5)
        raise ValueError(f"{bad}: Stoichiometry must list 5 counts (H, C, N, O, F)")
    y = _to_float_array(where, raw_targets, "target value(s)")
    counts = _to_float_array(where, stoichiometry, "Stoichiometry")
    molecule_ids = _to_float_array(where, [[i] for i in ids], "Index")[:, 0].astype(np.int64)
    references = _reference_energies_mev()
    for i, name in enumerate(TARGETS):
        if name in _ENERGY_TARGETS:
            y[:, i] *= HAR2EV * 1000.0  # Hartree -> meV
        if name in _ATOMIZATION_TARGETS:
            y[:, i] -= counts @ references[name]
    if len(np.unique(molecule_ids)) != len(molecule_ids):
        raise ValueError(f"{source_dir}: duplicate molecule Index values")
    return {"ids": molecule_ids, "y": y, "rows": rows}


def _process(rows: list[tuple[str, str, str, str, str]], workers: int) -> dict[str, np.ndarray]:
    from mtl_data._qm9_rdkit import process_rows

    chunks = [rows[i : i + _CHUNK] for i in range(0, len(rows), _CHUNK)]
    if workers <= 1 or len(chunks) <= 1:
        parts = [process_rows(c) for c in chunks]
    else:
        # spawn: the workers only import numpy + rdkit, and never inherit torch's thread pools.
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            parts = pool.map(process_rows, chunks)
    return {key: np.concatenate([p[key] for p in parts], axis=1 if key == "edge_index" else 0) for key in parts[0]}


def build_cache(
    source_dir: Path, positions: Sequence[int] | None, workers: int, source: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Featurise the molecules at ``positions`` (all when None) of the CSVs (read unless ``source``)."""
    source = source if source is not None else read_source(source_dir)
    selected = np.arange(len(source["ids"])) if positions is None else np.asarray(sorted(positions))
    processed = _process([source["rows"][i] for i in selected], workers)
    return {
        "version": CACHE_VERSION,
        "fingerprint": _fingerprint(_source_paths(source_dir)),
        "num_source_molecules": len(source["ids"]),
        "all_ids": torch.from_numpy(source["ids"]),
        "ids": torch.from_numpy(source["ids"][selected]),
        "y": torch.from_numpy(source["y"][selected]),
        "x": torch.from_numpy(processed["x"]),
        "pos": torch.from_numpy(processed["pos"]),
        "edge_index": torch.from_numpy(processed["edge_index"]),
        "edge_type": torch.from_numpy(processed["edge_type"]),
        "route": torch.from_numpy(processed["route"]),
        "atom_ptr": torch.from_numpy(np.concatenate([[0], np.cumsum(processed["num_atoms"])])),
        "edge_ptr": torch.from_numpy(np.concatenate([[0], np.cumsum(processed["num_edges"])])),
    }


def _save(path: Path, payload: dict[str, Any]) -> None:
    with atomic_writer(path) as handle:
        torch.save(payload, handle)


_LOADED: dict[tuple[str, int], dict[str, Any]] = {}


def _load(path: Path) -> dict[str, Any]:
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _LOADED:
        try:
            _LOADED[key] = torch.load(path, weights_only=True)
        except Exception as error:  # torch raises several types for a damaged pickle/zip
            raise ValueError(f"cannot read the QM9 cache {path} ({error}); delete it to rebuild") from error
    return _LOADED[key]


def split_ids(
    all_ids: np.ndarray, cache_dir: Path, train_size: int = TRAIN_SIZE, val_size: int = VAL_SIZE
) -> dict[str, list[int]]:
    """The train/val/test molecule ids, read from the split file or created and written once."""
    n = len(all_ids)
    if train_size < 1 or val_size < 1 or train_size + val_size >= n:
        raise ValueError(f"train_size={train_size} + val_size={val_size} must leave a test split of the {n} molecules")
    path = cache_dir / f"qm9_split_{train_size}_{val_size}.json"
    known = set(all_ids.tolist())
    if path.is_file():
        try:
            split = json.loads(path.read_text())
            parts = {name: [int(i) for i in split[name]] for name in ("train", "val", "test")}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{path}: not a valid QM9 split file ({error}); delete it to re-create") from error
        every = parts["train"] + parts["val"] + parts["test"]
        if len(every) != n or set(every) != known:
            raise ValueError(f"{path} does not partition the {n} molecules of the source; delete it to re-create")
        return parts
    order = [int(all_ids[i]) for i in stable_permutation(n, "qm9-seed002-split")]
    parts = {
        "train": order[:train_size],
        "val": order[train_size : train_size + val_size],
        "test": order[train_size + val_size :],
    }
    write_json_atomic(path, {"protocol": "seed 002 sec. 6.2: 110k/10k/rest, keyed permutation", **parts})
    return parts


def subset_ids(parts: dict[str, list[int]], subset: int | None) -> dict[str, list[int]]:
    """Proportional prefixes of the splits holding ``subset`` molecules in total."""
    if subset is None:
        return parts
    total = sum(len(p) for p in parts.values())
    if not 3 <= subset <= total:
        raise ValueError(f"subset must be between 3 and {total} molecules, got {subset}")
    train = max(1, round(subset * len(parts["train"]) / total))
    val = max(1, round(subset * len(parts["val"]) / total))
    test = subset - train - val
    if test < 1:
        train -= 1 - test
        test = 1
    return {"train": parts["train"][:train], "val": parts["val"][:val], "test": parts["test"][:test]}


def _resolve_workers(workers: int | None) -> int:
    return max(1, min(2, os.cpu_count() or 1)) if workers is None else max(1, int(workers))


def load_processed(
    cache_dir: Path,
    source_dir: Path,
    subset: int | None,
    train_size: int,
    val_size: int,
    workers: int | None,
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The processed molecules (full cache, or a subset cache when only a subset is needed) and the split."""
    paths = _source_paths(source_dir)
    fingerprint = _fingerprint(paths)
    full_path = cache_dir / CACHE_NAME
    if full_path.is_file():
        cache = _load(full_path)
        if cache.get("fingerprint") == fingerprint and cache.get("version") == CACHE_VERSION:
            parts = subset_ids(split_ids(cache["all_ids"].numpy(), cache_dir, train_size, val_size), subset)
            return cache, parts
    if subset is None:
        cache = build_cache(source_dir, None, _resolve_workers(workers))
        _save(full_path, cache)
        _LOADED[(str(full_path), full_path.stat().st_mtime_ns)] = cache
        return cache, split_ids(cache["all_ids"].numpy(), cache_dir, train_size, val_size)
    # Only a subset is needed and no full cache exists: featurise just those molecules.
    sub_path = cache_dir / f"qm9_processed_v{CACHE_VERSION}_subset{subset}_{train_size}_{val_size}.pt"
    if sub_path.is_file():
        cache = _load(sub_path)
        if cache.get("fingerprint") == fingerprint and cache.get("version") == CACHE_VERSION:
            return cache, subset_ids(split_ids(cache["all_ids"].numpy(), cache_dir, train_size, val_size), subset)
    source = read_source(source_dir)
    parts = subset_ids(split_ids(source["ids"], cache_dir, train_size, val_size), subset)
    wanted = set(parts["train"] + parts["val"] + parts["test"])
    positions = [i for i, molecule in enumerate(source["ids"].tolist()) if molecule in wanted]
    cache = build_cache(source_dir, positions, _resolve_workers(workers), source)
    _save(sub_path, cache)
    return cache, parts


@functools.lru_cache(maxsize=64)
def _complete_pairs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(2, n(n-1)) edge index of the complete graph on n nodes without self-loops, and the flat
    ``row * n + col`` position of each edge (molecules have at most 29 atoms: cache per size)."""
    row = torch.arange(n).repeat_interleave(n)
    col = torch.arange(n).repeat(n)
    keep = row != col
    return torch.stack([row[keep], col[keep]]), (row * n + col)[keep]


class QM9(MTLDataset):
    """QM9 molecules as PyG ``Data`` (see the module docstring). Batch with ``torch_geometric.loader.DataLoader``.

    ``root``: directory of the processed cache and split file (default ``$MTL_DATA_CACHE/qm9`` or
    ``~/.cache/mtl_data/qm9``). ``subset``: number of molecules for quick CPU runs. ``graph``:
    ``"complete"`` (reference protocol) or ``"bonds"``. ``normalize``: standardise targets with the
    training split's statistics (reference ``scale_target``).
    """

    batching = Batching.GRAPH

    def __init__(
        self,
        split: str = "train",
        root: str | os.PathLike[str] | None = None,
        subset: int | None = None,
        graph: str = "complete",
        normalize: bool = True,
        source_dir: str | os.PathLike[str] | None = None,
        train_size: int = TRAIN_SIZE,
        val_size: int = VAL_SIZE,
        workers: int | None = None,
    ) -> None:
        check_split(split)
        if graph not in ("complete", "bonds"):
            raise ValueError(f"unknown graph {graph!r}; valid: ['complete', 'bonds']")
        self.graph = graph
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        source = Path(source_dir).expanduser() if source_dir is not None else default_source_dir()
        self._cache, parts = load_processed(self.root, source, subset, train_size, val_size, workers)
        position = {int(m): i for i, m in enumerate(self._cache["ids"].tolist())}
        try:
            self.positions = torch.tensor([position[m] for m in parts[split]], dtype=torch.long)
            train_positions = torch.tensor([position[m] for m in parts["train"]], dtype=torch.long)
        except KeyError as error:
            raise ValueError(f"molecule {error} of the split is not in the processed cache {self.root}") from error
        y_train = self._cache["y"][train_positions]
        if normalize:
            self.target_mean = y_train.mean(dim=0)
            self.target_std = y_train.std(dim=0) if len(train_positions) > 1 else torch.ones(len(TARGETS))
            if not bool((self.target_std > 0).all()):
                raise ValueError("a QM9 target is constant on the training split; cannot normalise (subset too small?)")
        else:
            self.target_mean = torch.zeros(len(TARGETS), dtype=torch.float64)
            self.target_std = torch.ones(len(TARGETS), dtype=torch.float64)
        tasks = {
            name: RegressionTask(name, scale=float(self.target_std[i]), unit=UNITS[name])
            for i, name in enumerate(TARGETS)
        }
        size = "all" if subset is None else f"subset of {subset}"
        description = (
            f"QM9 from qm9pack ({size} molecules; split {split!r}: {len(self.positions)}; "
            f"110k/10k/rest protocol of seed 002; {graph} graphs; targets in reference units"
            + (", normalised with training mean/std)" if normalize else ")")
        )
        super().__init__(split, tasks, description)
        self.subset = subset
        from torch_geometric.transforms import Distance

        self._distance = Distance(norm=False)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, item: int):
        from torch_geometric.data import Data

        c = self._cache
        m = int(self.positions[item])
        a0, a1 = int(c["atom_ptr"][m]), int(c["atom_ptr"][m + 1])
        e0, e1 = int(c["edge_ptr"][m]), int(c["edge_ptr"][m + 1])
        x = c["x"][a0:a1].float()
        pos = c["pos"][a0:a1]
        n = a1 - a0
        edge_index = c["edge_index"][:, e0:e1].long()
        bond_attr = torch.nn.functional.one_hot(c["edge_type"][e0:e1].long(), 4).float()
        y = ((c["y"][m] - self.target_mean) / self.target_std).float().unsqueeze(0)
        data = Data(x=x, z=x[:, 5].long(), pos=pos, y=y, idx=int(c["ids"][m]))
        if self.graph == "bonds":
            data.edge_index, data.edge_attr = edge_index, bond_attr
            return data
        # Complete directed graph without self-loops, in row-major order (nash-mtl ``Complete``).
        pairs, flat = _complete_pairs(n)
        attr = torch.zeros(n * n, 4)
        attr[edge_index[0] * n + edge_index[1]] = bond_attr
        data.edge_index = pairs.clone()  # the cached tensor must not be shared with callers
        data.edge_attr = attr[flat]
        return self._distance(data)

    def denormalize(self, values: torch.Tensor) -> torch.Tensor:
        """Normalised predictions/targets (..., 11) -> reference units."""
        return values * self.target_std.to(values) + self.target_mean.to(values)

    @property
    def routes(self) -> dict[str, int]:
        """How many molecules of the cache were rebuilt by each route (see :mod:`mtl_data._qm9_rdkit`)."""
        from mtl_data._qm9_rdkit import ROUTES

        counts = torch.bincount(self._cache["route"].long(), minlength=len(ROUTES)).tolist()
        return dict(zip(ROUTES, counts))


def prepare_qm9(
    root: str | os.PathLike[str] | None = None,
    source_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    strict: bool = True,
    checksums: bool = True,
    train_size: int = TRAIN_SIZE,
    val_size: int = VAL_SIZE,
    subset: int | None = None,
) -> PrepareReport:
    """Validate the source CSVs (checksum manifest, ``strict``: 130,831 molecules), build the processed
    cache and the split file. Returns counts, timing and how each graph was rebuilt.

    ``subset=N`` (the dataset's option of that name) featurises only the N molecules such a dataset reads
    (a few seconds instead of ~80 s for all of them), unless the full cache already exists; the source files
    are still checked whole (checksums, molecule count)."""
    cache_dir = Path(root).expanduser() if root is not None else default_cache_dir()
    source = Path(source_dir).expanduser() if source_dir is not None else default_source_dir()
    manifest, created = None, False
    if checksums:
        manifest, created = record_or_verify(source, SOURCE_FILES, cache_dir / "qm9_source_manifest.json")
    start = time.perf_counter()
    cache, parts = load_processed(cache_dir, source, subset, train_size, val_size, workers)
    seconds = time.perf_counter() - start
    count = int(cache["num_source_molecules"])
    if strict and count != NUM_MOLECULES:
        raise ValueError(f"{source}: {count} molecules, QM9 has {NUM_MOLECULES} (pass strict=False for a partial copy)")
    from mtl_data._qm9_rdkit import ROUTES

    routes = dict(zip(ROUTES, torch.bincount(cache["route"].long(), minlength=len(ROUTES)).tolist()))
    held = "every molecule" if len(cache["ids"]) == count else f"{len(cache['ids'])} of {count} molecules"
    notes = [f"processed cache of {held} (ready in {seconds:.1f} s) in {cache_dir}", f"graph rebuilt via: {routes}"]
    counts = {name: len(ids) for name, ids in parts.items()}
    return PrepareReport("qm9", cache_dir, counts, manifest, created, notes)


__all__ = ["QM9", "TARGETS", "UNITS", "prepare_qm9"]
