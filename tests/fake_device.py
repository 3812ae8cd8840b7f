"""A fake accelerator on the CPU, to catch a tensor left on the wrong device on machines without a GPU.

Tensors on the fake device are wrappers around CPU tensors that report ``device == meta`` (``FAKE``). Every
operator runs on the wrapped CPU data (so results are bit-identical to a CPU run), but an operator that mixes
a fake-device tensor with a plain CPU tensor of one or more dimensions raises :class:`Misplaced`: the rule
CUDA enforces (only 0-dim CPU tensors, like Adam's step counters, may join CUDA operators). Cross-device
``copy_`` is allowed, as on CUDA (``load_state_dict`` copies CPU checkpoints into placed parameters).

Use: ``with FakeDevice(): ... tensor.to(FAKE) ...``. The mode makes factory functions called with
``device=FAKE`` (``torch.zeros(n, device=p.device)``) return fake-device tensors; ``.cpu()`` returns the plain
CPU tensor. A ``numpy()`` or ``item()``-free path to host memory does not exist, as on a GPU.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

FAKE = torch.device("meta")
CPU = torch.device("cpu")
_aten = torch.ops.aten


class Misplaced(AssertionError):
    """An operator mixed tensors on the fake device with CPU tensors (a missed placement)."""


class OnFake(torch.Tensor):
    """A CPU tensor shown as living on :data:`FAKE`."""

    inner: torch.Tensor

    @staticmethod
    def __new__(cls, inner: torch.Tensor) -> OnFake:
        wrapper = torch.Tensor._make_wrapper_subclass(
            cls,
            inner.size(),
            strides=inner.stride(),
            storage_offset=inner.storage_offset(),
            dtype=inner.dtype,
            layout=inner.layout,
            device=FAKE,
            requires_grad=inner.requires_grad,
        )
        wrapper.inner = inner
        return wrapper

    def __repr__(self) -> str:  # type: ignore[override]
        return f"OnFake({self.inner!r})"

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        return _run(func, args, kwargs or {})


def _unwrap(value: Any) -> Any:
    return value.inner if isinstance(value, OnFake) else value


def _wrap(value: Any) -> Any:
    return OnFake(value) if isinstance(value, torch.Tensor) and not isinstance(value, OnFake) else value


def _device_is(kwargs: dict[str, Any], device: torch.device) -> bool:
    value = kwargs.get("device")
    return value is not None and torch.device(value) == device


def _run(func: Any, args: Any, kwargs: dict[str, Any]) -> Any:
    tensors = [a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)]
    fake = any(isinstance(t, OnFake) for t in tensors)
    if func is _aten.copy_.default:  # cross-device copies are legal (as CPU <-> CUDA)
        dst, src = args[0], args[1]
        _unwrap(dst).copy_(_unwrap(src), *args[2:], **kwargs)
        return dst
    if func is _aten._to_copy.default and _device_is(kwargs, CPU):
        return func(*tree_map(_unwrap, args), **kwargs)  # .cpu(): the plain tensor
    to_fake = _device_is(kwargs, FAKE)
    if to_fake:
        kwargs = {**kwargs, "device": CPU}
    elif fake:
        stray = [t for t in tensors if not isinstance(t, OnFake) and t.dim() > 0]
        if stray:
            shapes = ", ".join(f"{tuple(t.shape)} on {t.device}" for t in stray)
            raise Misplaced(f"{func}: tensor(s) {shapes} meet tensors on the run's device")
    out = func(*tree_map(_unwrap, args), **tree_map(_unwrap, kwargs))
    return tree_map(_wrap, out) if (fake or to_fake) else out


class FakeDevice(TorchDispatchMode):
    """Active while the code under test runs: routes plain-tensor operators that target :data:`FAKE`."""

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if any(issubclass(t, OnFake) for t in types):
            return NotImplemented  # OnFake.__torch_dispatch__ handles it
        return _run(func, args, kwargs or {})


def on_fake(tensor: torch.Tensor) -> bool:
    return isinstance(tensor, OnFake)
