"""Molecular graphs with PyG-QM9 features from qm9pack rows (rdkit + numpy only: runs in worker processes).

PyG's ``QM9.process`` reads the bonds from MoleculeNet's ``gdb9.sdf`` (which Open Babel derived from
the DFT geometries). qm9pack ships the same 130,831 molecules as element lists, XYZ geometries (Angstrom)
and SMILES, but no bond table, so the graph is rebuilt here:

1. SMILES route (almost every molecule): the heavy atoms of the XYZ block appear in SMILES order;
   each hydrogen is attached to its nearest heavy atom, and the per-atom hydrogen counts must equal the
   SMILES's. Bond orders, aromaticity and hybridisation then come from the sanitised SMILES molecule,
   positions from the XYZ block, and atoms are kept in XYZ order (as PyG's).
2. Geometry route (when 1 does not match): rdkit's ``DetermineBonds`` (xyz2mol) on the XYZ block.
3. Connectivity route (when 2 fails): covalent-radius connectivity with single bonds only.

The route of every molecule is recorded (``ROUTES``) so a report can say how many were rebuilt how.

Node features, as PyG's QM9 (11 columns): one-hot type (H, C, N, O, F), atomic number, aromatic,
sp, sp2, sp3, number of bonded hydrogens. Bond types: single, double, triple, aromatic (one-hot in PyG).
Difference to PyG's processed tensors: PyG reads the SDF with ``sanitize=False``, so its hybridisation
columns are mostly zero (pyg-team/pytorch_geometric#2163); here they are rdkit's perceived values.
"""

from __future__ import annotations

import ast

import numpy as np
from rdkit import Chem, RDLogger
from rdkit.Chem import rdDetermineBonds

RDLogger.DisableLog("rdApp.*")

TYPES = {"H": 0, "C": 1, "N": 2, "O": 3, "F": 4}
ATOMIC_NUMBER = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
BOND_TYPES = {
    Chem.BondType.SINGLE: 0,
    Chem.BondType.DOUBLE: 1,
    Chem.BondType.TRIPLE: 2,
    Chem.BondType.AROMATIC: 3,
}
ROUTES = ("smiles", "geometry", "connectivity")
NUM_NODE_FEATURES = 11


def parse_elements(text: str) -> list[str]:
    """``"['C','H','H']"`` -> ``["C", "H", "H"]`` (string ops: ``ast.literal_eval`` is 10x slower)."""
    elements = [e.strip().strip("'\"") for e in text.strip().strip("[]").split(",")]
    if any(e not in TYPES for e in elements):
        elements = list(ast.literal_eval(text))
        unknown = sorted(set(elements) - set(TYPES))
        if unknown:
            raise ValueError(f"unknown element(s) {unknown}")
    return elements


def parse_xyz(text: str, n_atoms: int) -> np.ndarray:
    """``"[[x,y,z],...]"`` (Python literal, e.g. ``0.``) -> float64 array (n_atoms, 3).

    A plain split of the numbers is ~7x faster than ``ast.literal_eval`` and accepts exactly the
    numeric nested lists qm9pack writes; anything else falls back to ``ast.literal_eval``.
    """
    try:
        values = np.array(text.replace("[", " ").replace("]", " ").split(","), dtype=np.float64)
    except ValueError:
        values = np.asarray(ast.literal_eval(text), dtype=np.float64)
    if values.size != 3 * n_atoms:
        raise ValueError(f"XYZ holds {values.size} numbers, expected 3 x {n_atoms} atoms")
    return values.reshape(n_atoms, 3)


def _xyz_block(elements: list[str], xyz: np.ndarray) -> str:
    lines = [str(len(elements)), ""]
    lines += [f"{e} {x:.10f} {y:.10f} {z:.10f}" for e, (x, y, z) in zip(elements, xyz)]
    return "\n".join(lines) + "\n"


def _smiles_route(elements: list[str], xyz: np.ndarray, smiles: str) -> tuple[Chem.Mol, list[int]] | None:
    """Molecule with explicit hydrogens from SMILES + mapping mol atom -> XYZ atom, or None."""
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        return None
    heavy_xyz = [i for i, e in enumerate(elements) if e != "H"]
    # Index loops: iterating rdkit's atom sequence wrapper is several times slower.
    atoms = [mol.GetAtomWithIdx(i) for i in range(mol.GetNumAtoms())]
    if [elements[i] for i in heavy_xyz] != [a.GetSymbol() for a in atoms]:
        return None
    hydrogens = [i for i, e in enumerate(elements) if e == "H"]
    owners = []
    if hydrogens:
        d2 = ((xyz[hydrogens][:, None, :] - xyz[heavy_xyz][None, :, :]) ** 2).sum(-1)
        owners = d2.argmin(axis=1).tolist()
    expected = [a.GetTotalNumHs() for a in atoms]
    if np.bincount(owners, minlength=len(heavy_xyz)).tolist() != expected:
        return None
    mol = Chem.AddHs(mol)
    # AddHs appends the hydrogens of heavy atom 0, then of atom 1, ...: pair them with the XYZ ones.
    free: dict[int, list[int]] = {}
    for h, owner in zip(hydrogens, owners):
        free.setdefault(owner, []).append(h)
    mapping = list(heavy_xyz)
    for index in range(len(heavy_xyz), mol.GetNumAtoms()):
        heavy = mol.GetAtomWithIdx(index).GetNeighbors()[0].GetIdx()
        mapping.append(free[heavy].pop(0))
    return mol, mapping


def _geometry_route(elements: list[str], xyz: np.ndarray, bond_orders: bool) -> Chem.Mol | None:
    mol = Chem.MolFromXYZBlock(_xyz_block(elements, xyz))
    if mol is None:
        return None
    try:
        if bond_orders:
            rdDetermineBonds.DetermineBonds(mol, charge=0)
            Chem.SanitizeMol(mol)
        else:
            rdDetermineBonds.DetermineConnectivity(mol)
    except (ValueError, RuntimeError, Chem.rdchem.MolSanitizeException):
        return None
    return mol


def molecule_graph(elements: list[str], xyz: np.ndarray, smiles: str) -> dict[str, np.ndarray | int]:
    """Graph of one molecule, atoms in XYZ order: ``x`` uint8 (n, 11), ``edge_index`` int16 (2, E)
    (both directions, sorted by ``row * n + col`` as PyG), ``edge_type`` uint8 (E,), ``route`` index."""
    n = len(elements)
    route = 0
    found = _smiles_route(elements, xyz, smiles)
    if found is not None:
        mol, mapping = found
    else:
        mapping = list(range(n))
        route = 1
        mol = _geometry_route(elements, xyz, bond_orders=True)
        if mol is None:
            route = 2
            mol = _geometry_route(elements, xyz, bond_orders=False)
            if mol is None:
                raise ValueError("rdkit could not build the molecule from its XYZ block")

    x = np.zeros((n, NUM_NODE_FEATURES), dtype=np.uint8)
    for index in range(mol.GetNumAtoms()):
        atom = mol.GetAtomWithIdx(index)
        i = mapping[index]
        symbol = atom.GetSymbol()
        if symbol != elements[i]:
            raise ValueError(f"atom mapping mismatch: {symbol} vs {elements[i]} at XYZ index {i}")
        x[i, TYPES[symbol]] = 1
        x[i, 5] = ATOMIC_NUMBER[symbol]
        x[i, 6] = 1 if atom.GetIsAromatic() else 0
        hybridization = atom.GetHybridization()
        x[i, 7] = hybridization == Chem.HybridizationType.SP
        x[i, 8] = hybridization == Chem.HybridizationType.SP2
        x[i, 9] = hybridization == Chem.HybridizationType.SP3
    rows, cols, types = [], [], []
    for index in range(mol.GetNumBonds()):
        bond = mol.GetBondWithIdx(index)
        a, b = mapping[bond.GetBeginAtomIdx()], mapping[bond.GetEndAtomIdx()]
        kind = BOND_TYPES.get(bond.GetBondType(), 0)
        rows += [a, b]
        cols += [b, a]
        types += [kind, kind]
    edge_index = np.array([rows, cols], dtype=np.int64).reshape(2, -1)
    order = np.argsort(edge_index[0] * n + edge_index[1], kind="stable")
    edge_index = edge_index[:, order]
    edge_type = np.asarray(types, dtype=np.uint8)[order]
    is_h = np.array([e == "H" for e in elements])
    # Bonded hydrogens per atom, counted over incoming edges as PyG does.
    x[:, 10] = np.bincount(edge_index[1], weights=is_h[edge_index[0]], minlength=n).astype(np.uint8)
    return {"x": x, "edge_index": edge_index.astype(np.int16), "edge_type": edge_type, "route": route}


def process_rows(rows: list[tuple[str, str, str, str, str]]) -> dict[str, np.ndarray]:
    """Worker entry point: rows of (source, elements, xyz, smiles, n_atoms) -> concatenated arrays."""
    xs, positions, edges, edge_types, routes, atom_counts, edge_counts = [], [], [], [], [], [], []
    for source, elements_text, xyz_text, smiles, n_text in rows:
        try:
            elements = parse_elements(elements_text)
            n = int(n_text)
            if len(elements) != n:
                raise ValueError(f"N_atoms={n} but {len(elements)} elements")
            xyz = parse_xyz(xyz_text, n)
            graph = molecule_graph(elements, xyz, smiles)
        except (ValueError, SyntaxError) as error:
            raise ValueError(f"{source}: {error}") from error
        xs.append(graph["x"])
        positions.append(xyz.astype(np.float32))
        edges.append(graph["edge_index"])
        edge_types.append(graph["edge_type"])
        routes.append(graph["route"])
        atom_counts.append(len(elements))
        edge_counts.append(graph["edge_index"].shape[1])
    return {
        "x": np.concatenate(xs),
        "pos": np.concatenate(positions),
        "edge_index": np.concatenate(edges, axis=1),
        "edge_type": np.concatenate(edge_types),
        "route": np.asarray(routes, dtype=np.uint8),
        "num_atoms": np.asarray(atom_counts, dtype=np.int64),
        "num_edges": np.asarray(edge_counts, dtype=np.int64),
    }
