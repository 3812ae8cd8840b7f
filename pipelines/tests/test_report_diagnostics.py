"""What a diagnostics study's figure draws (mtl_pipelines.report.diagnostics), on records written by hand: every
expected number is derived in the comments (pooled means, sample stds, percentiles, conflict shares, the cosine
matrices rebuilt from their upper triangles)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from mtl_pipelines import grid
from mtl_pipelines.report import Results, diagnostics, figures


def _run(label: str, seed: int) -> grid.RunSpec:
    return grid.RunSpec(
        run_id=f"b-{label}-{seed}", config={}, benchmark="b", model_key="m", method=label, label=label,
        task=None, setting="", seed=seed,
    )  # fmt: skip


def _results(records: list[tuple[grid.RunSpec, list[dict[str, Any]]]], tasks: list[str]) -> Results:
    return Results({r.run_id: {"final": {"tasks": tasks}, "eval": {}, "diagnostics": d} for r, d in records})


def _study(**figure: Any) -> dict[str, Any]:
    return {"id": "x", "builder": "diagnostics", "figure": figure}


def test_similarity_pools_the_steps_and_seeds_of_an_epoch() -> None:
    a0, a1 = _run("ls", 0), _run("ls", 1)
    measured = {"magnitude_similarity": [0.8], "condition_number": 2.0}
    records = [
        (a0, [{"epoch": 1, "cosine": [0.5], "grad_norms": [1, 3], **measured},
              {"epoch": 2, "cosine": [-0.5], "grad_norms": [2, 2], **measured, "magnitude_similarity": [0.4]}]),
        (a1, [{"epoch": 1, "cosine": [-0.1], "grad_norms": [1, 1], **measured, "magnitude_similarity": [0.6]}]),
    ]  # fmt: skip
    series = diagnostics.epoch_series(_study(quantity="similarity"), [a0, a1], _results(records, ["A", "B"]))
    (row,) = series.values()
    assert list(series) == ["ls (b)"] and list(row) == ["cosine", "magnitude similarity", "conflict %"]
    cosine = row["cosine"]
    # epoch 1 pools seed 0's 0.5 and seed 1's -0.1: mean 0.2, sample std |0.5 + 0.1| / sqrt(2); epoch 2: one value
    assert cosine.epochs == [1, 2]
    assert cosine.mean == pytest.approx([0.2, -0.5]) and cosine.std == pytest.approx([0.6 / math.sqrt(2), 0.0])
    # percentiles by linear interpolation between the two values: 2.5% -> -0.1 + 0.025 * 0.6
    assert cosine.low == pytest.approx([-0.085, -0.5]) and cosine.high == pytest.approx([0.485, -0.5])
    # conflict share of each record (1 pair): 0%, 100% at epoch 1 (mean 50), 100% at epoch 2
    assert row["conflict %"].mean == pytest.approx([50.0, 100.0])
    assert row["magnitude similarity"].mean == pytest.approx([0.7, 0.4])
    norms = diagnostics.epoch_series(_study(quantity="grad_norms"), [a0, a1], _results(records, ["A", "B"]))
    # per step the mean of its task-gradient norms, epoch 1: 2 and 1 -> 1.5; records without losses: no loss panel
    assert list(norms["ls (b)"]) == ["gradient norm"] and norms["ls (b)"]["gradient norm"].mean == pytest.approx(
        [1.5, 2]
    )


def test_grad_norms_and_losses_and_the_z_rows() -> None:
    run = _run("consmtl", 0)
    base = {"magnitude_similarity": [1.0], "condition_number": 1.0}
    records = [
        (run, [
            {"epoch": 1, "cosine": [0.9], "grad_norms": [2.0, 4.0], "losses": [1.0, 3.0], **base,
             "z": {"cosine": [-0.3], "grad_norms": [5.0, 7.0], **base}},
            {"epoch": 1, "cosine": [0.7], "grad_norms": [None, 6.0], "losses": [2.0, 2.0], **base, "z": None},
        ])
    ]  # fmt: skip
    results = _results(records, ["A", "B"])
    row = diagnostics.epoch_series(_study(quantity="grad_norms"), [run], results)["consmtl (b)"]
    # per step: mean norm 3 and 6 (the non-finite norm, None, is left out); loss sums 4 and 4
    assert row["gradient norm"].mean == pytest.approx([4.5]) and row["gradient norm"].std == pytest.approx([2.1213203])
    assert row["task loss"].mean == pytest.approx([4.0]) and row["task loss"].std == pytest.approx([0.0])
    on_z = diagnostics.epoch_series(_study(quantity="similarity", wrt="z"), [run], results)["consmtl (b)"]
    # only the first record has rows w.r.t. z
    assert on_z["cosine"].mean == pytest.approx([-0.3]) and on_z["conflict %"].mean == pytest.approx([100.0])


def test_cosine_matrices_are_the_clipped_epoch_means_of_the_recorded_pairs() -> None:
    tasks = ["A", "B", "C"]
    run0, run1 = _run("consmtl", 0), _run("consmtl", 1)
    # pairs in row-major upper-triangle order: (A, B), (A, C), (B, C)
    records = [
        (run0, [{"epoch": e, "z": {"cosine": [0.1 * e, -0.5, 0.2]}} for e in range(1, 9)]),
        (run1, [{"epoch": 1, "z": {"cosine": [0.3, -0.1, 0.6]}}]),
    ]
    study = _study(quantity="cosine_matrix", wrt="z", epochs=5)
    ((label, (names, by_epoch)),) = diagnostics.cosine_matrices(study, [run0, run1], _results(records, tasks)).items()
    assert label == "consmtl (b)" and names == tasks
    # within the first 5 epochs, 6 evenly spread picks of 5 recorded epochs: all of them
    assert list(by_epoch) == [1, 2, 3, 4, 5]
    # epoch 1: mean of the two seeds, (A, B) = (0.1 + 0.3) / 2, (A, C) = -0.3 -> clipped to 0, (B, C) = 0.4
    expected = np.array([[1.0, 0.2, 0.0], [0.2, 1.0, 0.4], [0.0, 0.4, 1.0]])
    assert np.allclose(by_epoch[1], expected)
    assert np.allclose(by_epoch[5], [[1.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 1.0]])


def test_the_matrix_is_rebuilt_in_mtl_core_upper_triangle_order() -> None:
    from mtl_core.analysis import upper_triangle

    rng = np.random.default_rng(0)
    grads = torch.from_numpy(rng.normal(size=(5, 7)))
    unit = grads / grads.norm(dim=1, keepdim=True)
    cosine = unit @ unit.T
    records = [(_run("ls", 0), [{"epoch": 1, "cosine": upper_triangle(cosine).tolist()}])]
    study = _study(quantity="cosine_matrix", epochs=1)
    ((_, (_, by_epoch)),) = diagnostics.cosine_matrices(
        study, [r for r, _ in records], _results(records, list("ABCDE"))
    ).items()
    assert np.allclose(by_epoch[1], cosine.clamp(min=0).numpy())


def test_a_record_of_another_task_count_is_named() -> None:
    run = _run("ls", 0)
    records = [(run, [{"epoch": 3, "cosine": [0.1, 0.2]}])]
    with pytest.raises(ValueError, match=r"run b-ls-0: a diagnostics record of epoch 3 holds 2 cosines, 3 tasks"):
        diagnostics.cosine_matrices(_study(quantity="cosine_matrix", epochs=5), [run], _results(records, list("ABC")))


@pytest.mark.parametrize(
    ("figure", "message"),
    [
        ({"quantity": "norms"}, "figure.quantity 'norms'; valid: similarity, conflict, condition_number, grad_norms"),
        ({"quantity": "similarity", "wrt": "heads"}, "figure.wrt 'heads'; valid: parameters, z"),
        ({"quantity": "similarity", "epochs": 60}, "figure.epochs belongs to quantity cosine_matrix"),
        ({"quantity": "cosine_matrix", "epochs": 0}, "figure.epochs 0; valid: a positive number of epochs"),
        ({"quantity": "cosine_matrix"}, "figure.epochs belongs to quantity cosine_matrix"),
        ({"quantity": "conflict", "x": "step"}, "figure.x 'step'; valid: epoch"),
        ({"quantity": "conflict", "colour": "red"}, r"figure has unknown field\(s\) \['colour'\]"),
    ],
)
def test_a_bad_figure_block_is_named(figure: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=rf"^studies/x.yaml: {message}"):
        diagnostics.check_figure(_study(**figure), "studies/x.yaml")


def test_every_diagnostics_study_names_a_valid_figure() -> None:
    studies = [s for s in grid.load_studies().values() if s["builder"] == "diagnostics"]
    quantities = {s["id"]: diagnostics.figure_spec(s)["quantity"] for s in studies}
    assert quantities["000_fig2"] == "grad_norms" and quantities["004_fig2"] == "cosine_matrix"
    assert diagnostics.figure_spec(grid.load_studies()["004_fig2"])["wrt"] == "z"


def test_the_figures_are_drawn(tmp_path: Path) -> None:
    run = _run("consmtl", 0)
    records = [(run, [{"epoch": e, "cosine": [0.1], "grad_norms": [1.0, 2.0], "losses": [0.5, 0.4],
                       "magnitude_similarity": [0.9], "condition_number": 3.0, "z": {"cosine": [0.2]}}
                      for e in (1, 2)])]  # fmt: skip
    results = _results(records, ["A", "B"])
    (lines,) = figures.diagnostics_over_training(_study(quantity="grad_norms"), [run], results, [], tmp_path)
    (matrices,) = figures.diagnostics_over_training(
        _study(quantity="cosine_matrix", wrt="z", epochs=60), [run], results, [], tmp_path
    )
    assert lines.name == "diagnostics.png" and matrices.name == "cosine_matrices.png"
    # two panels side by side; a row of two 2 x 2 matrices (epochs 1, 2)
    assert Image.open(lines).width > Image.open(lines).height
    assert figures.diagnostics_over_training(_study(quantity="conflict"), [], results, [], tmp_path) == []
