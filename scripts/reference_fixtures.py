"""Run the reference implementations of mtl-core's methods on fixed Jacobians and write JSON fixtures.

The reference repositories are NOT part of this project: clone them yourself (see
``packages/mtl-core/tests/fixtures/reference/README.md``) and pass their checkouts on the command line.
This script imports their classes from those paths, feeds them losses whose gradients are the fixed
Jacobians, and records what they produce, with provenance (repository, commit, file, class, call, library
versions). It contains no code of theirs.

    python scripts/reference_fixtures.py --nash-mtl DIR --fairgrad DIR --mtllib DIR --samsung-mtl DIR \\
        --famo DIR --libmtl DIR --out packages/mtl-core/tests/fixtures/reference

Needs torch, numpy, scipy and cvxpy 1.5.4 with ECOS (the nash-mtl pin), e.g. in a throwaway venv.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

N = 12  # parameters per task gradient


# --- the fixed inputs -------------------------------------------------------------------------------------


def jacobians() -> dict[str, np.ndarray]:
    """Seeded float64 Jacobians: benign, conflicting, and badly scaled (row norms over 6 orders)."""
    rng = np.random.default_rng(20240613)
    out = {}
    out["random_k2"] = rng.standard_normal((2, N))
    out["random_k3"] = rng.standard_normal((3, N))
    shared = rng.standard_normal(N)
    out["conflicting_k4"] = np.array([(-1.0) ** i for i in range(4)])[:, None] * shared + 0.3 * rng.standard_normal(
        (4, N)
    )
    base = rng.standard_normal((3, N))
    out["scaled_k3"] = np.array([1e-3, 1.0, 1e3])[:, None] * base / np.linalg.norm(base, axis=1, keepdims=True)
    base = rng.standard_normal((5, N))
    out["scaled_k5"] = 10.0 ** np.linspace(-3, 3, 5)[:, None] * base / np.linalg.norm(base, axis=1, keepdims=True)
    return out


def losses_for(k: int) -> np.ndarray:
    return np.linspace(0.5, 2.0, k)


def loss_sequence(k: int, steps: int, seed: int) -> np.ndarray:
    """Per-step losses for the stateful weightings: decreasing with noise, all > 0."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.5, 2.0, k)
    return np.array([start * (1.0 - 0.05 * t) * rng.uniform(0.9, 1.1, k) for t in range(steps)])


def linear_problem(
    grads: np.ndarray, losses: np.ndarray, dtype: torch.dtype = torch.float64
) -> tuple[torch.Tensor, torch.Tensor]:
    """A shared parameter ``p = 0`` and losses ``L_i = losses_i + <g_i, p>``: their gradients are the rows.

    float64 where the reference accepts it; float32 where it builds float32 buffers itself (``torch.Tensor``)."""
    p = torch.zeros(grads.shape[1], dtype=dtype, requires_grad=True)
    g = torch.from_numpy(grads).to(dtype)
    return p, torch.from_numpy(losses).to(dtype) + g @ p


# --- importing the reference code from its checkout -------------------------------------------------------


def commit_of(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


def import_weight_methods(repo: Path) -> types.ModuleType:
    """``methods.weight_methods`` of one repository (several share that package name: isolate each)."""
    for name in [m for m in sys.modules if m == "methods" or m.startswith("methods.")]:
        del sys.modules[name]
    sys.path.insert(0, str(repo))
    try:
        return importlib.import_module("methods.weight_methods")
    finally:
        sys.path.remove(str(repo))


def import_file(path: Path, name: str) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def import_libmtl_weighting(repo: Path, cls: str) -> Any:
    """``LibMTL.weighting.<cls>`` without running the package ``__init__`` files (they import the trainer and
    every architecture): empty parent packages whose ``__path__`` points at the checkout."""
    for name, sub in (("LibMTL", "LibMTL"), ("LibMTL.weighting", "LibMTL/weighting")):
        pkg = types.ModuleType(name)
        pkg.__path__ = [str(repo / sub)]
        sys.modules[name] = pkg
    return getattr(importlib.import_module(f"LibMTL.weighting.{cls}"), cls)


def versions() -> dict[str, str]:
    import cvxpy
    import scipy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cvxpy": cvxpy.__version__,
    }


# --- runs ---------------------------------------------------------------------------------------------------


def shared_grad_run(
    make: Callable[[int], Any],
    call: Callable[[Any, torch.Tensor, torch.Tensor], Any],
    dtype: torch.dtype = torch.float64,
) -> Callable:
    """For the methods that write the shared gradient: ``p.grad`` after ``call(method, losses, p)``."""

    def run(grads: np.ndarray, losses: np.ndarray) -> dict[str, Any]:
        p, loss_vec = linear_problem(grads, losses, dtype)
        method = make(grads.shape[0])
        extra = call(method, loss_vec, p)
        out: dict[str, Any] = {"direction": p.grad.double().tolist(), "dtype": str(dtype).removeprefix("torch.")}
        weights = extra.get("weights") if isinstance(extra, dict) else None
        if weights is not None:
            out["weights"] = np.asarray(torch.as_tensor(weights).double()).tolist()
        return out

    return run


def nash_backward(method: Any, losses: torch.Tensor, p: torch.Tensor) -> Any:
    return method.backward(losses=losses, shared_parameters=[p])[1]


def pcgrad_run(weight_methods: types.ModuleType) -> Callable:
    def run(grads: np.ndarray, losses: np.ndarray, seed: int) -> dict[str, Any]:
        k = grads.shape[0]
        # the reference shuffles one list of the K gradients in place once per task (random.shuffle): replaying
        # the same calls on the indices after the same seed gives the orders it used
        random.seed(seed)
        idx, orders = list(range(k)), []
        for _ in range(k):
            random.shuffle(idx)
            orders.append(list(idx))
        random.seed(seed)
        p, loss_vec = linear_problem(grads, losses)
        weight_methods.PCGrad(n_tasks=k, device=torch.device("cpu"), reduction="sum").backward(
            loss_vec, shared_parameters=[p]
        )
        return {"direction": p.grad.double().tolist(), "orders": orders}

    return run


def aligned_run(solver: Any, scale_mode: str) -> Callable:
    def run(grads: np.ndarray, losses: np.ndarray) -> dict[str, Any]:
        g = torch.from_numpy(grads)
        aligned, weights, _singulars = solver.apply(g.T.unsqueeze(0), scale_mode)
        return {
            "direction": aligned[0].sum(-1).double().tolist(),
            "weights": weights.sum(-1).double().tolist(),
        }

    return run


def famo_run(weight_methods: types.ModuleType, gamma: float, w_lr: float) -> Callable:
    def run(sequence: np.ndarray, after: np.ndarray) -> dict[str, Any]:
        k = sequence.shape[1]
        famo = weight_methods.FAMO(n_tasks=k, device=torch.device("cpu"), gamma=gamma, w_lr=w_lr)
        weights, logits = [], []
        for losses, new_losses in zip(sequence, after, strict=True):
            loss_vec = torch.tensor(losses, dtype=torch.float32, requires_grad=True)
            objective, _ = famo.get_weighted_loss(loss_vec)
            (w,) = torch.autograd.grad(objective, loss_vec)  # d objective / d L_i: the effective task weights
            weights.append(w.double().tolist())
            famo.update(torch.tensor(new_losses, dtype=torch.float32))
            logits.append(famo.w.detach().double().tolist())
        return {"weights": weights, "logits": logits}

    return run


def dwa_run(dwa_cls: Any, temperature: float) -> Callable:
    def run(epochs: np.ndarray) -> dict[str, Any]:
        n_epochs, _, k = epochs.shape
        dwa = dwa_cls()
        dwa.task_num, dwa.device = k, torch.device("cpu")
        dwa.train_loss_buffer = np.zeros((k, n_epochs))  # LibMTL's trainer: per-task epoch averages
        weights = []
        for e in range(n_epochs):
            dwa.epoch = e  # LibMTL's trainer sets model.epoch at the start of every epoch
            for losses in epochs[e]:
                loss_vec = torch.tensor(losses, dtype=torch.float64, requires_grad=True)
                weights.append(np.asarray(dwa.backward(loss_vec, T=temperature), dtype=float).tolist())
            dwa.train_loss_buffer[:, e] = epochs[e].mean(0)
        return {"weights": weights}

    return run


def uw_run(weight_methods: types.ModuleType, lr: float) -> Callable:
    def run(sequence: np.ndarray) -> dict[str, Any]:
        k = sequence.shape[1]
        uw = weight_methods.Uncertainty(n_tasks=k, device=torch.device("cpu"))
        opt = torch.optim.Adam(uw.parameters(), lr=lr)  # nash-mtl trainers: Adam on the method's parameters
        weights, log_vars = [], []
        for losses in sequence:
            loss_vec = torch.tensor(losses, dtype=torch.float32, requires_grad=True)
            opt.zero_grad()
            objective, _ = uw.get_weighted_loss(loss_vec)
            (w,) = torch.autograd.grad(objective, loss_vec, retain_graph=True)
            objective.backward()
            opt.step()
            weights.append(w.double().tolist())
            log_vars.append(uw.logsigma.detach().double().tolist())
        return {"weights": weights, "log_vars": log_vars}

    return run


# --- fixture writing ----------------------------------------------------------------------------------------


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Atomic write (temp file in the same directory + rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def gradient_cases(run: Callable, names: list[str], **kwargs: Any) -> list[dict[str, Any]]:
    out = []
    for name, grads in jacobians().items():
        if name not in names:
            continue
        losses = losses_for(grads.shape[0])
        out.append(
            {
                "name": name,
                "grads": grads.tolist(),
                "losses": losses.tolist(),
                **kwargs,
                "outputs": run(grads, losses, **kwargs),
            }
        )
    return out


ALL = list(jacobians())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for flag in ("nash-mtl", "fairgrad", "mtllib", "samsung-mtl", "famo", "libmtl"):
        parser.add_argument(f"--{flag}", type=Path, required=True, help=f"checkout of the {flag} repository")
    parser.add_argument("--out", type=Path, required=True, help="fixture directory (must exist)")
    args = parser.parse_args()
    if not args.out.is_dir():
        parser.error(f"--out {args.out} is not a directory")
    torch.manual_seed(0)
    cpu = torch.device("cpu")
    libs = versions()

    def fixture(method: str, repo_flag: str, url: str, file: str, symbol: str, how: str, cases: list) -> None:
        repo = getattr(args, repo_flag.replace("-", "_"))
        data = {
            "method": method,
            "provenance": {
                "repository": url,
                "commit": commit_of(repo),
                "file": file,
                "symbol": symbol,
                "how": how,
                "generated_by": "scripts/reference_fixtures.py",
                "libraries": libs,
            },
            "cases": cases,
        }
        write_json(args.out / f"{method}.json", data)
        print(f"wrote {method}.json ({len(cases)} cases)")

    p_grad = "losses L_i = losses_i + <g_i, p> at p = 0 (float64), reference backward(...); p.grad recorded"

    wm = import_weight_methods(args.nash_mtl)
    nash_url = "https://github.com/AvivNavon/nash-mtl"
    fixture(
        "nash_mtl",
        "nash-mtl",
        nash_url,
        "methods/weight_methods.py",
        "NashMTL(max_norm=1.0, update_weights_every=1, optim_niter=20)",
        p_grad + "; weights = the returned alpha (before the max_norm clip)",
        gradient_cases(shared_grad_run(lambda k: wm.NashMTL(n_tasks=k, device=cpu), nash_backward), ALL),
    )
    fixture(
        "mgda",
        "nash-mtl",
        nash_url,
        "methods/weight_methods.py",
        "MGDA(params='shared', normalization='none')",
        p_grad + "; weights = the returned sol (scaled to sum K by the reference)",
        gradient_cases(shared_grad_run(lambda k: wm.MGDA(n_tasks=k, device=cpu), nash_backward), ALL),
    )
    fixture(
        "imtl",
        "nash-mtl",
        nash_url,
        "methods/weight_methods.py",
        "IMTLG",
        p_grad + "; weights = the returned alpha",
        gradient_cases(shared_grad_run(lambda k: wm.IMTLG(n_tasks=k, device=cpu), nash_backward), ALL),
    )
    fixture(
        "cagrad",
        "nash-mtl",
        nash_url,
        "methods/weight_methods.py",
        "CAGrad(c=0.4) (rescale=1)",
        p_grad,
        gradient_cases(
            shared_grad_run(lambda k: wm.CAGrad(n_tasks=k, device=cpu, c=0.4), nash_backward, torch.float32), ALL
        ),
    )
    pcgrad = pcgrad_run(wm)
    pc_cases = []
    for name in ("random_k2", "random_k3", "conflicting_k4", "scaled_k3"):
        grads = jacobians()[name]
        losses = losses_for(grads.shape[0])
        pc_cases.append(
            {
                "name": name,
                "grads": grads.tolist(),
                "losses": losses.tolist(),
                "seed": 7,
                "outputs": pcgrad(grads, losses, 7),
            }
        )
    fixture(
        "pcgrad",
        "nash-mtl",
        nash_url,
        "methods/weight_methods.py",
        "PCGrad(reduction='sum')",
        p_grad + "; random.seed(seed) first; orders[i] = the order of the (shuffled) task list for task i",
        pc_cases,
    )
    uw_seq = loss_sequence(3, 6, seed=1)
    fixture(
        "uw",
        "nash-mtl",
        nash_url,
        "methods/weight_methods.py",
        "Uncertainty",
        "float32 losses per step; weights = d objective / d L_i; then torch.optim.Adam(lr=0.025) on logsigma "
        "(the nash-mtl trainers' method_params_lr default); log_vars = logsigma after each step",
        [{"name": "k3_6_steps", "sequence": uw_seq.tolist(), "lr": 0.025, "outputs": uw_run(wm, 0.025)(uw_seq)}],
    )

    wm = import_weight_methods(args.fairgrad)
    fair = []
    for alpha in (1.0, 2.0):
        run = shared_grad_run(
            lambda k, a=alpha: wm.FairGrad(n_tasks=k, device=cpu, alpha=a, max_norm=1.0),
            lambda m, loss, p: m.backward(loss, shared_parameters=[p])[1],
            torch.float32,
        )
        fair += [dict(case, alpha=alpha) for case in gradient_cases(run, ALL)]
    fixture(
        "fairgrad",
        "fairgrad",
        "https://github.com/OptMN-Lab/fairgrad",
        "methods/weight_methods.py",
        "FairGrad(alpha, max_norm=1.0)",
        p_grad + "; weights = the returned least_squares solution",
        fair,
    )

    wm = import_weight_methods(args.mtllib)

    def consmtl_run(grads: np.ndarray, losses: np.ndarray) -> dict[str, Any]:
        # per-task representations z_i = p (the "nyuv2 and cityscapes" branch) and heads theta_i = 0:
        # L_i = losses_i + <g_i + theta_i, z_i>, so dL_i/dp = g_i; only the shared gradient is recorded
        k = grads.shape[0]
        p = torch.zeros(grads.shape[1], dtype=torch.float32, requires_grad=True)  # the reference's buffers
        heads = [torch.zeros(grads.shape[1], dtype=torch.float32, requires_grad=True) for _ in range(k)]
        zs = [p * 1.0 for _ in range(k)]
        g = torch.from_numpy(grads).float()
        loss_vec = torch.stack([losses[i] + (g[i] + heads[i]) @ zs[i] for i in range(k)])
        extra = wm.ConsMTL(n_tasks=k, device=cpu, max_norm=1.0, lambda_=1).backward(
            loss_vec, shared_parameters=[p], task_specific_parameters=heads, representation=zs
        )[1]
        return {
            "direction": p.grad.double().tolist(),
            "weights": np.asarray(extra["weights"]).tolist(),
            "dtype": "float32",
        }

    fixture(
        "consmtl",
        "mtllib",
        "https://github.com/jianke0604/MTLlib",
        "methods/weight_methods.py",
        "ConsMTL(max_norm=1.0, lambda_=1) (upper level)",
        p_grad + " with per-task z_i = p and zero linear heads; weights = the returned least_squares solution",
        gradient_cases(consmtl_run, ALL),
    )

    # torch.symeig raises since torch 1.9 ("deprecated ... and is now removed"); its error message names the
    # replacement for eigenvectors=True: torch.linalg.eigh(A, UPLO='U' if upper else 'L'). A shim, not their code.
    torch.symeig = lambda a, eigenvectors=True, upper=True: torch.linalg.eigh(a, UPLO="U" if upper else "L")
    solver = import_file(args.samsung_mtl / "code/optim/aligned/solver.py", "aligned_solver").ProcrustesSolver
    aligned = []
    for mode in ("min", "median", "rmse"):
        aligned += [dict(case, scale=mode) for case in gradient_cases(aligned_run(solver, mode), ALL)]
    fixture(
        "aligned_mtl",
        "samsung-mtl",
        "https://github.com/SamsungLabs/MTL",
        "code/optim/aligned/solver.py",
        "ProcrustesSolver.apply(grads.T.unsqueeze(0), scale_mode)",
        "float64 G; direction = aligned grads summed over tasks, weights = weights.sum(-1) (as AlignedMTLBalancer); "
        "torch.symeig shimmed by torch.linalg.eigh (removed in torch 2)",
        aligned,
    )

    wm = import_weight_methods(args.famo)
    seq = loss_sequence(3, 6, seed=2)
    # per-task improvements differ (equal ones would make the logits' gradient pure float32 round-off)
    after = seq * np.random.default_rng(3).uniform(0.85, 1.0, seq.shape)
    fixture(
        "famo",
        "famo",
        "https://github.com/Cranial-XIX/FAMO",
        "methods/weight_methods.py",
        "FAMO(gamma=0.001, w_lr=0.025)",
        "float32 losses per step: weights = d get_weighted_loss / d L_i, then update(losses after the step); "
        "logits = FAMO.w after each update (gamma 0.001: experiments/{nyuv2,celeba,quantum_chemistry}/run.sh)",
        [
            {
                "name": "k3_6_steps",
                "sequence": seq.tolist(),
                "after": after.tolist(),
                "gamma": 0.001,
                "w_lr": 0.025,
                "outputs": famo_run(wm, 0.001, 0.025)(seq, after),
            }
        ],
    )

    dwa_cls = import_libmtl_weighting(args.libmtl, "DWA")
    epochs = np.stack([loss_sequence(3, 4, seed=10 + e) * (1.0 - 0.1 * e) for e in range(5)])
    fixture(
        "dwa",
        "libmtl",
        "https://github.com/median-research-group/LibMTL",
        "LibMTL/weighting/DWA.py",
        "DWA.backward(losses, T=2.0)",
        "epoch e: DWA.epoch = e, backward on every step's losses (weights returned), then "
        "train_loss_buffer[:, e] = the epoch's mean losses (as LibMTL's Trainer)",
        [
            {
                "name": "k3_5_epochs_4_steps",
                "epochs": epochs.tolist(),
                "temperature": 2.0,
                "outputs": dwa_run(dwa_cls, 2.0)(epochs),
            }
        ],
    )


if __name__ == "__main__":
    main()
