"""Host resources of a step: NumPy/SciPy's BLAS threads during the aggregators' solves, kept row buffers."""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys

import numpy as np
import pytest
import torch
from test_step_models import TinyMTL, batch, closure_for

from mtl_core import MTLStep, aggregators
from mtl_core._threads import host_blas_libraries, single_threaded_host_blas

threadpoolctl = pytest.importorskip("threadpoolctl")


def host_blas_threads() -> list[int]:
    return [lib.num_threads for lib in host_blas_libraries()]


@pytest.fixture
def two_blas_threads():
    """NumPy's and SciPy's OpenBLAS at 2 threads for the test (the CI machine's default), restored after."""
    libs = host_blas_libraries()
    if not libs:
        pytest.skip("no NumPy/SciPy BLAS library found by threadpoolctl")
    before = host_blas_threads()
    for lib in libs:
        lib.set_num_threads(2)
    yield
    for lib, n in zip(libs, before):
        lib.set_num_threads(n)


def test_numpy_and_scipy_blas_are_found_and_torch_is_left_alone():
    libs = host_blas_libraries()
    paths = [lib.filepath for lib in libs]
    assert any("numpy" in p for p in paths), paths  # the library np.linalg.eigh runs on
    torch_dir = torch.__file__.rsplit("/", 1)[0]
    assert not any(p.startswith(torch_dir) for p in paths)


def test_single_threaded_within_and_restored_after(two_blas_threads):
    threads = torch.get_num_threads()
    with single_threaded_host_blas():
        assert host_blas_threads() == [1] * len(host_blas_libraries())
        assert torch.get_num_threads() == threads  # torch's own pool keeps its threads
    assert host_blas_threads() == [2] * len(host_blas_libraries())


def test_restored_when_the_solve_raises(two_blas_threads):
    with pytest.raises(RuntimeError, match="boom"), single_threaded_host_blas():
        raise RuntimeError("boom")
    assert host_blas_threads() == [2] * len(host_blas_libraries())


@pytest.mark.parametrize("name", ["mgda", "aligned_mtl", "imtl", "cagrad", "nash_mtl"])
def test_every_aggregation_solves_with_one_blas_thread(name, two_blas_threads, monkeypatch):
    seen = []

    def spy(cls):
        solve = cls.weights_from_gramian

        def weights_from_gramian(self, gram, losses):
            seen.append(host_blas_threads())
            return solve(self, gram, losses)

        return weights_from_gramian

    agg = aggregators.create(name, 3)
    monkeypatch.setattr(type(agg), "weights_from_gramian", spy(type(agg)))
    grads = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    agg(grads, torch.ones(3))
    assert seen and all(t == [1] * len(host_blas_libraries()) for t in seen)
    assert host_blas_threads() == [2] * len(host_blas_libraries())


def test_results_do_not_depend_on_the_blas_thread_count(two_blas_threads, monkeypatch):
    grads = torch.randn(11, 300, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    limited = aggregators.create("mgda", 11)(grads)
    import mtl_core.aggregators.base as base

    monkeypatch.setattr(base, "single_threaded_host_blas", contextlib.nullcontext)
    plain = aggregators.create("mgda", 11)(grads)
    np.testing.assert_allclose(limited.numpy(), plain.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("method", ["exact+mgda", "features+mgda"])
def test_the_rows_buffer_is_kept_across_steps_and_gives_the_same_steps(method, monkeypatch):
    k = 3
    x, y = batch(k)
    kept, fresh = TinyMTL(k), TinyMTL(k)
    step = MTLStep(kept, method, functools.partial(torch.optim.SGD, lr=0.1))
    ptrs = []
    for _ in range(3):
        step.step(closure_for(x, y))
        ptrs.append(step.estimator._rows_buffer.data_ptr())
    assert len(set(ptrs)) == 1  # one allocation, overwritten every step

    from mtl_core.estimators.base import Estimator

    monkeypatch.setattr(Estimator, "rows_buffer", lambda self, inputs: None)  # a fresh buffer every step
    other = MTLStep(fresh, method, functools.partial(torch.optim.SGD, lr=0.1))
    for _ in range(3):
        other.step(closure_for(x, y))
    for a, b in zip(kept.parameters(), fresh.parameters()):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_the_rows_buffer_follows_the_shape_of_the_representation():
    k = 3
    model = TinyMTL(k)
    step = MTLStep(model, "features+mgda", functools.partial(torch.optim.SGD, lr=0.1))
    x, y = batch(k, n=6)
    step.step(closure_for(x, y))
    assert step.estimator._rows_buffer.shape[0] == k
    first = step.estimator._rows_buffer.shape[1]
    x, y = batch(k, n=4)  # a smaller last batch: z has fewer entries
    step.step(closure_for(x, y))
    assert step.estimator._rows_buffer.shape[1] == first * 4 // 6


def test_per_task_gradients_rejects_a_wrong_out_buffer():
    k = 3
    model = TinyMTL(k)
    step = MTLStep(model, "exact+mgda", functools.partial(torch.optim.SGD, lr=0.1))
    x, y = batch(k)
    from mtl_core.estimators.base import Estimator

    def wrong(self, inputs):
        return torch.empty(k, 7)

    step.estimator.rows_buffer = wrong.__get__(step.estimator, Estimator)
    with pytest.raises(ValueError, match=r"out must be a contiguous tensor of shape \(3, \d+\), got \(3, 7\)"):
        step.step(closure_for(x, y))


def test_mtl_core_works_without_threadpoolctl():
    """threadpoolctl is a speed-up only: without it mtl_core imports and aggregates the same."""
    code = (
        "import sys; sys.modules['threadpoolctl'] = None\n"  # makes `import threadpoolctl` raise ImportError
        "import torch, mtl_core\n"
        "from mtl_core import aggregators\n"
        "from mtl_core._threads import host_blas_libraries\n"
        "assert host_blas_libraries() == []\n"
        "g = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=torch.float64)\n"
        "print(aggregators.create('mgda', 2)(g).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    np.testing.assert_allclose(eval(out.stdout), [0.8, 0.4], rtol=1e-12)  # MGDA's min-norm point, by hand
