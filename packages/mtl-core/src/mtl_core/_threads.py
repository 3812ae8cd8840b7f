"""Keep NumPy/SciPy's BLAS single-threaded while the aggregators solve their K x K problems on the host.

Why: NumPy and SciPy ship their own OpenBLAS with its own thread pool, next to torch's. A K x K LAPACK call
(``eigh`` for MGDA and Aligned-MTL, ``lstsq`` for IMTL-G, SLSQP for CAGrad) is too small to gain from
threads, but OpenBLAS still wakes its workers for it, and they busy-wait after the call while torch's own
threads run the Jacobian's GEMMs and the next backward: on the 2-core CI VM an MGDA aggregation at K = 40 took
120 ms instead of 34-55 ms, Aligned-MTL 107 ms instead of 33-74 ms (benchmarks/README.md, "Two thread pools").

threadpoolctl (the library scikit-learn uses for the same problem) finds the loaded BLAS libraries and sets
their thread counts. Only BLAS libraries outside torch's own directory are limited, so torch's GEMMs keep
their threads wherever torch links OpenBLAS itself (aarch64 wheels). Without threadpoolctl the context does
nothing: results are identical, only the CPU time differs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import torch

try:
    from threadpoolctl import ThreadpoolController
except ImportError:  # an optional speed-up: mtl_core itself needs only torch, numpy and scipy
    ThreadpoolController = None

_TORCH_DIR = os.path.dirname(os.path.realpath(torch.__file__))
_host_blas: list[Any] | None = None


def host_blas_libraries() -> list[Any]:
    """threadpoolctl's controllers of the BLAS libraries loaded outside torch (found once per process)."""
    global _host_blas
    if _host_blas is None:
        if ThreadpoolController is None:
            _host_blas = []
        else:
            _host_blas = [
                lib
                for lib in ThreadpoolController().lib_controllers
                if lib.user_api == "blas" and not os.path.realpath(lib.filepath).startswith(_TORCH_DIR)
            ]
    return _host_blas


@contextlib.contextmanager
def single_threaded_host_blas() -> Iterator[None]:
    """Run the block with NumPy/SciPy's BLAS on one thread; restore their thread counts afterwards."""
    libs = host_blas_libraries()
    before = [lib.num_threads for lib in libs]
    try:
        for lib, n in zip(libs, before):
            if n != 1:
                lib.set_num_threads(1)
        yield
    finally:
        for lib, n in zip(libs, before):
            if n != 1:
                lib.set_num_threads(n)
