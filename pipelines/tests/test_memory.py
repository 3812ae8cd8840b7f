"""Peak memory of the training steps (mtl_pipelines.memory): what each measure reports, on this machine's
CPU, against allocations of known size; and the run's figure from its epochs."""

from __future__ import annotations

import sys

import pytest
import torch

from mtl_pipelines import memory

MIB = 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the CPU measure reads /proc/self (Linux)")
def test_cpu_peak_is_the_resident_increase_of_what_the_steps_touched() -> None:
    meter = memory.PeakMemory("cpu")
    assert meter.measure == "rss_peak_increase"
    meter.start()
    block = torch.ones(64 * MIB // 4)  # 64 MiB, written (so resident), then freed before stop()
    del block
    peak = meter.stop()
    assert peak["measure"] == "rss_peak_increase"
    assert 60 * MIB <= peak["bytes"] <= 200 * MIB  # the 64 MiB plus allocator and page slack
    meter.start()  # reset: a step that touches nothing new has (almost) no increase
    small = torch.ones(16)
    del small
    assert meter.stop()["bytes"] < 16 * MIB


def test_run_peak_is_the_largest_epoch_of_the_measure_the_run_finished_with() -> None:
    epochs = [
        {"bytes": 5, "measure": "rss_peak_increase"},
        None,  # an epoch trained before the measure existed (resumed run)
        {"bytes": 3, "measure": "rss_peak_increase"},
    ]
    assert memory.run_peak(epochs) == {"bytes": 5, "measure": "rss_peak_increase"}
    resumed_on_gpu = [*epochs, {"bytes": 2, "measure": "cuda_max_allocated"}]
    assert memory.run_peak(resumed_on_gpu) == {"bytes": 2, "measure": "cuda_max_allocated"}
    assert memory.run_peak([None, {"bytes": None, "measure": "unavailable"}]) == {
        "bytes": None,
        "measure": "unavailable",
    }


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_peak_counts_the_tensors_allocated_between_start_and_stop() -> None:
    meter = memory.PeakMemory("cuda")
    meter.start()
    before = torch.cuda.memory_allocated()
    block = torch.ones(64 * MIB // 4, device="cuda")
    del block
    peak = meter.stop()
    assert peak["measure"] == "cuda_max_allocated"
    assert peak["bytes"] - before == 64 * MIB
