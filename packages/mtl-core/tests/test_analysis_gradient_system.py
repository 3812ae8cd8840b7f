"""Gradient-system diagnostics against hand-computed values and their defining properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mtl_core import analysis, gradients


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def random_grads(k: int, n: int, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(k, n, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- cosine similarity (seed 001 eq. (4)) -------------------------------------------------------------


def test_cosine_matrix_hand_values():
    cos = analysis.cosine_similarity_matrix(t([[1, 0], [1, 1], [-2, 0]]))
    expected = t([[1, 1 / math.sqrt(2), -1], [1 / math.sqrt(2), 1, -1 / math.sqrt(2)], [-1, -1 / math.sqrt(2), 1]])
    torch.testing.assert_close(cos, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cosine_matrix_is_symmetric_with_unit_diagonal_and_matches_torch(dtype):
    g = random_grads(6, 1000, dtype=dtype) * torch.logspace(-3, 3, 6, dtype=dtype)[:, None]
    cos = analysis.cosine_similarity_matrix(g)
    assert cos.dtype == torch.float64
    assert torch.equal(cos, cos.T)
    assert torch.equal(torch.diagonal(cos), torch.ones(6, dtype=torch.float64))
    g64 = g.double()
    ref = torch.nn.functional.cosine_similarity(g64[:, None, :], g64[None, :, :], dim=-1)
    torch.testing.assert_close(cos, ref, rtol=0, atol=1e-12)


def test_cosine_with_a_zero_gradient_is_zero():
    cos = analysis.cosine_similarity_matrix(t([[1, 2], [0, 0]]))
    assert cos.tolist() == [[1.0, 0.0], [0.0, 0.0]]


# --- magnitude similarity (seed 001 eq. (5)) ----------------------------------------------------------


def test_magnitude_similarity_hand_values():
    # norms 1, 3 and 1: 2*1*3/(1+9) = 0.6; equal norms give exactly 1 whatever the directions
    mag = analysis.magnitude_similarity_matrix(t([[1, 0], [0, 3], [0, -1]]))
    torch.testing.assert_close(mag, t([[1, 0.6, 1], [0.6, 1, 0.6], [1, 0.6, 1]]), rtol=0, atol=1e-15)


def test_magnitude_similarity_is_direction_free_and_scale_free():
    g = random_grads(4, 50)
    mag = analysis.magnitude_similarity_matrix(g)
    rotated = g * torch.where(torch.arange(50) % 2 == 0, -1.0, 1.0).double()  # same norms
    torch.testing.assert_close(analysis.magnitude_similarity_matrix(rotated), mag)
    torch.testing.assert_close(analysis.magnitude_similarity_matrix(7.5 * g), mag)
    assert ((mag > 0) & (mag <= 1)).all()


def test_magnitude_similarity_of_zero_gradients():
    mag = analysis.magnitude_similarity_matrix(t([[0, 0], [0, 0], [1, 0]]))
    assert mag[0, 1] == 1.0 and mag[0, 2] == 0.0


# --- conflicting parameters ---------------------------------------------------------------------------


def test_conflicting_parameters_hand_values():
    g = t([[1, -1, 0, 2], [-1, -1, 3, -2], [1, 1, 1, 1]])
    p = analysis.conflicting_parameter_matrix(g)
    # pair (0,1): coords 0 and 3 opposite -> 2/4; (0,2): coord 1 -> 1/4; (1,2): coords 0, 1, 3 -> 3/4
    torch.testing.assert_close(p, t([[0, 0.5, 0.25], [0.5, 0, 0.75], [0.25, 0.75, 0]]), rtol=0, atol=0)


def test_conflicting_parameters_match_brute_force_across_chunks(monkeypatch):
    g = random_grads(5, 103)
    g[g.abs() < 0.3] = 0.0  # exact zeros never conflict
    brute = torch.zeros(5, 5, dtype=torch.float64)
    for i in range(5):
        for j in range(5):
            brute[i, j] = ((g[i] * g[j]) < 0).double().mean()
    monkeypatch.setattr(gradients, "_CHUNK_ENTRIES", 10)  # several column chunks
    torch.testing.assert_close(analysis.conflicting_parameter_matrix(g), brute, rtol=0, atol=1e-15)


# --- condition number (seed 003 eq. (2)) --------------------------------------------------------------


def test_condition_number_is_one_for_orthogonal_rows_of_equal_norm():
    q, _ = torch.linalg.qr(random_grads(40, 4))  # 4 orthonormal columns
    g = 3.0 * q.T
    assert analysis.condition_number(g) == pytest.approx(1.0, abs=1e-12)
    assert analysis.condition_number(g.float()) == pytest.approx(1.0, abs=1e-5)


def test_condition_number_of_orthogonal_rows_is_the_norm_ratio():
    # seed 003 Corollary 1: orthogonal gradients, singular values = norms
    assert analysis.condition_number(t([[1, 0, 0], [0, 4, 0]])) == pytest.approx(4.0, rel=1e-14)


def test_condition_number_of_equal_norms_is_cot_half_angle():
    # seed 003 Corollary 2: equal norms at angle theta < 90 deg -> kappa = cot(theta / 2)
    theta = math.pi / 3
    g = t([[1, 0], [math.cos(theta), math.sin(theta)]])
    assert analysis.condition_number(g) == pytest.approx(1 / math.tan(theta / 2), rel=1e-12)


def test_condition_number_matches_numpy_on_random_systems():
    g = random_grads(5, 30) * torch.tensor([1.0, 2.0, 10.0, 0.5, 3.0], dtype=torch.float64)[:, None]
    assert analysis.condition_number(g) == pytest.approx(np.linalg.cond(g.numpy()), rel=1e-9)
    sv = analysis.singular_values(g).numpy()
    np.testing.assert_allclose(sv, np.linalg.svd(g.numpy(), compute_uv=False), rtol=1e-10)


@pytest.mark.parametrize(
    "rows",
    [
        [[1, 2, 3], [2, 4, 6]],  # linearly dependent
        [[1, 2, 3], [0, 0, 0]],  # a zero gradient
        [[1, 0], [0, 1], [1, 1]],  # K > n
        [[0, 0], [0, 0]],  # nothing
    ],
)
def test_rank_deficient_systems_are_ill_posed(rows):
    g = t(rows)
    assert analysis.condition_number(g) == math.inf
    report = analysis.gradient_system_report(g)
    assert report.condition_number == math.inf
    assert report.rank == np.linalg.matrix_rank(g.numpy())


def test_report_gives_the_condition_number_over_nonzero_singular_values():
    report = analysis.gradient_system_report(t([[1, 0, 0], [0, 2, 0], [0, 4, 0]]))
    assert report.rank == 2 and report.condition_number == math.inf
    # singular values sqrt(20) and 1
    assert report.condition_number_nonzero == pytest.approx(math.sqrt(20), rel=1e-12)


def test_condition_number_rtol():
    g = t([[1, 0], [0, 1e-6]])
    assert analysis.condition_number(g) == pytest.approx(1e6, rel=1e-9)
    assert analysis.condition_number(g, rtol=1e-5) == math.inf
    with pytest.raises(ValueError, match="rtol"):
        analysis.condition_number(g, rtol=2.0)


# --- conflicting pairs (seed 000 Fig. 3) and Pareto stationarity --------------------------------------


def test_conflicting_pair_share():
    assert analysis.conflicting_pair_share(t([[1, 0], [-1, 1]])) == 1.0
    assert analysis.conflicting_pair_share(t([[1, 0], [1, 1]])) == 0.0
    assert analysis.conflicting_pair_share(t([[1, 0], [0, 1]])) == 0.0  # orthogonal is no conflict
    # three tasks, only the pair (0, 2) conflicts
    assert analysis.conflicting_pair_share(t([[1, 0], [1, 1], [-1, 2]])) == pytest.approx(1 / 3)


def test_pareto_stationarity():
    assert analysis.pareto_stationarity(t([[1, 0], [-3, 0]])) == pytest.approx(0.0, abs=1e-12)
    assert analysis.pareto_stationarity(t([[1, 0], [2, 0]])) == pytest.approx(1.0)
    # orthogonal unit gradients: min-norm point (1/2, 1/2) with norm 1/sqrt(2)
    assert analysis.pareto_stationarity(t([[1, 0], [0, 1]])) == pytest.approx(1 / math.sqrt(2))


def test_upper_triangle_order():
    m = torch.arange(16, dtype=torch.float64).view(4, 4)
    assert analysis.upper_triangle(m).tolist() == [1, 2, 3, 6, 7, 11]


@pytest.mark.parametrize(
    "bad,match",
    [
        (torch.ones(3), "2-D"),
        (torch.ones(3, 0), "2-D"),
        (torch.ones(2, 3, dtype=torch.int64), "floating-point"),
        (torch.tensor([[1.0, float("nan")], [1.0, 1.0]]), r"row\(s\) \[0\]"),
        ([[1.0, 2.0]], "torch.Tensor"),
    ],
)
def test_bad_input_raises(bad, match):
    with pytest.raises(ValueError, match=match):
        analysis.cosine_similarity_matrix(bad)


def test_pairwise_measures_need_two_rows():
    with pytest.raises(ValueError, match="K >= 2"):
        analysis.conflicting_pair_share(t([[1.0, 2.0]]))
