"""Peak memory of a run's training steps (seed 002 Fig. 4 / seed 004 Fig. 3: memory next to time per method).

What is measured depends on the device, and each record names its measure:

- CUDA (``"cuda_max_allocated"``): ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` at
  the start of the epoch's steps: the peak of the bytes held by tensors on the device (model, optimizer
  state, activations and gradients), as PyTorch's caching allocator counts them; the figure the papers'
  GPU memory plots correspond to.
- CPU on Linux (``"rss_peak_increase"``): the process's peak resident set size (``VmHWM`` of
  ``/proc/self/status``, reset by writing ``5`` to ``/proc/self/clear_refs``) during the steps, minus the
  resident size when they began: the extra memory the steps needed on top of what the process already held.
  Memory the allocator kept from an earlier epoch (or an earlier run of the same process) is reused without
  raising the resident size, so the first epoch of a run carries its figure: the run's value is the maximum
  over its epochs. It is an upper-level view (whole pages, every allocator), not a tensor count.
- elsewhere (``"unavailable"``): no figure (``bytes`` None).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

__all__ = ["MEASURES", "PeakMemory", "run_peak"]

MEASURES = ("cuda_max_allocated", "rss_peak_increase", "unavailable")

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kib(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (None when the file or field is not there)."""
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _reset_rss_peak() -> bool:
    """Reset the process's peak resident size to its current size (Linux >= 4.0); False if not possible."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


class PeakMemory:
    """Peak memory of the code between :meth:`start` and :meth:`stop` on ``device``.

    ``stop()`` returns ``{"bytes": int | None, "measure": one of MEASURES}`` (see the module docstring).
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)
        self._baseline: int | None = None
        if self.device.type == "cuda":
            self.measure = "cuda_max_allocated"
        elif _status_kib("VmHWM") is not None and _reset_rss_peak():
            self.measure = "rss_peak_increase"
        else:
            self.measure = "unavailable"

    def start(self) -> None:
        if self.measure == "cuda_max_allocated":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.measure == "rss_peak_increase":
            _reset_rss_peak()
            rss = _status_kib("VmRSS")
            self._baseline = None if rss is None else rss * 1024

    def stop(self) -> dict[str, Any]:
        peak: int | None = None
        if self.measure == "cuda_max_allocated":
            torch.cuda.synchronize(self.device)
            peak = int(torch.cuda.max_memory_allocated(self.device))
        elif self.measure == "rss_peak_increase" and self._baseline is not None:
            hwm = _status_kib("VmHWM")
            peak = None if hwm is None else max(0, hwm * 1024 - self._baseline)
        return {"bytes": peak, "measure": self.measure}


def run_peak(records: Iterable[Mapping[str, Any] | None]) -> dict[str, Any]:
    """A run's peak memory from its epochs' records (:meth:`PeakMemory.stop`; None for an epoch trained before
    the measure existed): the maximum of their bytes (``unavailable`` when none has one). A run resumed on
    another kind of device has epochs of two measures: the measure of its last measured epoch is kept (the
    device it finished on), the others are not mixed in."""
    measured = [r for r in records if r is not None and r.get("bytes") is not None]
    if not measured:
        return {"bytes": None, "measure": "unavailable"}
    measure = measured[-1]["measure"]
    return {"bytes": max(int(r["bytes"]) for r in measured if r["measure"] == measure), "measure": measure}
