"""Time LibMTL 1.1.5 and TorchJD on the same model, batch and machine as ``step_time.py``.

Run it in the peers' own environment (``benchmarks/setup_peers.sh``): neither library is a dependency of
this project. Usage: python benchmarks/peers.py [--device cpu|cuda] [--ks 2 3 11 40] [--out FILE]

LibMTL 1.1.5 needs two run-time patches on torch 2 (nothing of it is copied here):
* its weightings read and overwrite ``param.grad.data`` of the shared parameters, so the shared
  gradients must stay allocated: our harness zeroes them with ``set_to_none=False``;
* its CAGrad hard-codes 3 tasks in ``reshape(1, 3)``: the source is patched at import to ``reshape(1, -1)``.
* ``import LibMTL`` imports ``torchvision.models.utils``, removed from torchvision: a shim module maps
  it to ``torch.hub.load_state_dict_from_url`` before the import.
LibMTL's GradDrop only runs on representation gradients, so it is not timed against ``exact+graddrop``.
Its weightings also read ``self.epoch``/``self.train_loss_buffer`` (DWA, GradNorm): the harness sets
epoch 2 with a constant buffer, so both take their adaptive branch.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import types
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import Problem, machine, time_fn, warm_up_process, write_json
from common import parser as common_parser

# our method name -> (LibMTL weighting class, its kwargs)
LIBMTL = {
    "ls": ("EW", {}),
    "uw": ("UW", {}),
    "dwa": ("DWA", {"T": 2.0}),
    "gls": ("GLS", {}),
    "rlw": ("RLW", {"dist": "Normal"}),
    "exact+mgda": ("MGDA", {"mgda_gn": "none"}),
    "exact+pcgrad": ("PCGrad", {}),
    "exact+gradvac": ("GradVac", {"beta": 0.5}),
    "exact+imtl": ("IMTL", {}),  # LibMTL's IMTL is the hybrid IMTL-L + IMTL-G
    "exact+cagrad": ("CAGrad", {"calpha": 0.4, "rescale": 1}),
    "exact+gradnorm": ("GradNorm", {"alpha": 1.5}),
}

# our method name -> TorchJD aggregator factory (mtl_backward: Jacobian of the shared parameters)
TORCHJD = {
    "ls": lambda k, a: a.Sum(),
    "exact+mgda": lambda k, a: a.MGDA(),
    "exact+pcgrad": lambda k, a: a.PCGrad(),
    "exact+cagrad": lambda k, a: a.CAGrad(c=0.4),
    "exact+imtl": lambda k, a: a.IMTLG(),
    "exact+nash_mtl": lambda k, a: a.NashMTL(n_tasks=k),
    "exact+fairgrad": lambda k, a: a.FairGrad(alpha=1.0),
    "exact+gradvac": lambda k, a: a.GradVac(),
    "exact+graddrop": lambda k, a: a.GradDrop(),
    "exact+aligned_mtl": lambda k, a: a.AlignedMTL(),
}


def _shim_torchvision_utils() -> None:
    if "torchvision.models.utils" not in sys.modules:
        shim = types.ModuleType("torchvision.models.utils")
        shim.load_state_dict_from_url = torch.hub.load_state_dict_from_url
        sys.modules["torchvision.models.utils"] = shim


def _patched_libmtl_weighting(name: str) -> type:
    _shim_torchvision_utils()
    module = importlib.import_module(f"LibMTL.weighting.{name}")
    if name == "CAGrad":
        source = (
            inspect.getsource(module)
            .replace("reshape(1,3)", "reshape(1,-1)")
            .replace("reshape(3, 1)", "reshape(-1, 1)")
            .replace("reshape(3,1)", "reshape(-1,1)")
        )
        patched = types.ModuleType(module.__name__)
        patched.__dict__["__file__"] = module.__file__
        exec(compile(source, module.__file__, "exec"), patched.__dict__)
        module = patched
    return getattr(module, name)


def libmtl_step(p: Problem, weighting: str, kwargs: dict):
    cls = _patched_libmtl_weighting(weighting)

    class Harness(cls):  # the attributes LibMTL's Trainer would provide
        def __init__(self) -> None:
            super().__init__()
            self.task_num, self.device, self.rep_grad = p.k, p.device, False
            self.encoder = p.encoder
            self.epoch = 2
            self.train_loss_buffer = np.ones((p.k, 3))

        def get_share_params(self):
            return p.encoder.parameters()

        def zero_grad_share_params(self) -> None:
            p.encoder.zero_grad(set_to_none=False)

    h = Harness()
    h.init_param()
    extra = [x for x in h.parameters() if x.requires_grad]
    opt = torch.optim.SGD([*p.encoder.parameters(), *p.heads.parameters(), *extra], lr=1e-3)
    for q in p.encoder.parameters():  # LibMTL writes into existing .grad tensors
        q.grad = torch.zeros_like(q)

    def step() -> None:
        opt.zero_grad(set_to_none=False)
        _, losses = p.forward()
        h.backward(losses, **kwargs)
        opt.step()

    return step


def torchjd_step(p: Problem, factory):
    import torchjd.aggregation as agg_mod
    from torchjd.autojac import jac_to_grad, mtl_backward

    aggregator = factory(p.k, agg_mod)
    shared = p.shared_parameters()

    def step() -> None:
        p.optimizer.zero_grad(set_to_none=True)
        z, losses = p.forward_list()  # separate graphs per loss: TorchJD back-propagates each once
        mtl_backward(losses, features=z)
        jac_to_grad(shared, aggregator)
        p.optimizer.step()

    return step


def run(ks: list[int], device: str, repeats: int) -> dict:
    _shim_torchvision_utils()

    from importlib.metadata import version

    versions = {"LibMTL": version("LibMTL"), "torchjd": version("torchjd")}
    results: dict = {"machine": machine(), "device": device, "repeats": repeats, "versions": versions, "ks": {}}
    warm_up_process(device)
    for k in ks:
        p = Problem(k, device)
        row: dict = {"libmtl": {}, "torchjd": {}, "errors": {}}  # seconds per step
        for method, (name, kwargs) in LIBMTL.items():
            try:
                row["libmtl"][method] = time_fn(libmtl_step(Problem(k, device), name, kwargs), p.device, repeats)
            except Exception as err:  # record, don't hide: a peer that fails at this K is reported as such
                row["errors"][f"libmtl:{method}"] = f"{type(err).__name__}: {str(err)[:200]}"
        for method, factory in TORCHJD.items():
            try:
                row["torchjd"][method] = time_fn(torchjd_step(Problem(k, device), factory), p.device, repeats)
            except Exception as err:
                row["errors"][f"torchjd:{method}"] = f"{type(err).__name__}: {str(err)[:200]}"
        results["ks"][str(k)] = row
        print(f"K={k}: peers done ({len(row['errors'])} errors)", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = common_parser(__doc__, "peers.json")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    results = run(args.ks, args.device, args.repeats)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
