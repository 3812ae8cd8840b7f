"""The ``mtl`` command line: prepare data, train and evaluate runs, build study reports, export the grid.

    mtl prepare <dataset> [--root DIR] [--profile P]   validate real data / render a stand-in into its cache
    mtl train <config.yaml> [--run-dir DIR] [--device D] train (or resume, or --restart) one run
    mtl train --job <manifest.yaml> [--stamp FILE]     train the runs of a workflow job in one process
    mtl evaluate <run-dir> [--stl RUN ...]             clean + corrupted test metrics -> eval.json
    mtl evaluate --job <manifest.yaml> [--stamp FILE]  evaluate the runs of a workflow job
    mtl report <study|all> [--profile P]               tables (md, tex, csv), figures, index
    mtl grid [--profile P] [--write]                   list (or write the configs of) the runs of a profile
    mtl dvc [--profile P] [--check | --summary STUDY]  generate dvc.yaml + params.yaml from the studies
    mtl list {studies,methods,datasets,models,profiles}

Every command validates its input first (nothing is written on error) and ends with one summary line.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mtl_pipelines.jobs import JobFailed

__all__ = ["main"]


def _fail(message: str) -> int:
    print(f"mtl: error: {message}", file=sys.stderr)
    return 2


def _cmd_train(args: argparse.Namespace) -> int:
    from mtl_pipelines import config as cfg
    from mtl_pipelines import grid, io, kinds
    from mtl_pipelines.run import Run

    if args.job is not None:
        if args.config is not None or args.run is not None:
            return _fail("--job runs the runs of a job: give no config file or --run with it")
        return _run_job(args, "train")
    if (args.config is None) == (args.run is None):
        return _fail("give either a config file, --run <id> (with --profile or --params) or --job")
    if args.run is not None and args.params:
        from mtl_pipelines import dvc

        config = kinds.resolve(dvc.run_config(args.params, args.run), f"{args.params}:runs.{args.run}")
        if not args.run_dir:
            return _fail("--params needs --run-dir")
        run_dir = Path(args.run_dir)
    elif args.run is not None:
        profile = grid.load_profile(args.profile)
        runs = grid.expand(profile)
        if args.run not in runs:
            return _fail(
                f"unknown run {args.run!r} in profile {args.profile!r}; `mtl grid --profile {args.profile}` lists them"
            )
        config = runs[args.run].config
        run_dir = Path(args.run_dir) if args.run_dir else grid.run_dir(profile, args.run)
    else:
        config = cfg.load(args.config, resolver=kinds.resolve)
        runs_root = Path("results", "runs")
        if args.run_dir:
            run_dir = Path(args.run_dir)
        else:
            default = Run.default_dir(config, cfg.run_name(config, args.config), runs_root)
            run_dir = io.check_within(default, runs_root, "run directory")
    began = time.perf_counter()
    result = kinds.train(
        config,
        run_dir,
        progress=None if not args.quiet else False,
        log=print,
        device=args.device,
        restart=args.restart,
        trust_checkpoints=args.trust_checkpoints,
    )
    tasks = ", ".join(f"{t}: " + " ".join(f"{m}={v:.4g}" for m, v in ms.items()) for t, ms in result["last"].items())
    print(
        f"trained {run_dir} ({result['method']} on {result['dataset']}, {result['epochs']} epochs, "
        f"{time.perf_counter() - began:.1f}s): {tasks}"
    )
    return 0


def _run_job(args: argparse.Namespace, what: str) -> int:
    """``--job``: a manifest file, or with ``--params`` a job id of the generated params.yaml (DVC)."""
    from mtl_pipelines import jobs

    if args.params:
        if not args.runs_root:
            return _fail("--params with --job needs --runs-root (the directory holding the run directories)")
        from mtl_pipelines import dvc

        spec = dvc.job_spec(args.params, args.job, args.runs_root)
    else:
        spec = jobs.load_manifest(args.job)
    began = time.perf_counter()
    options = {"device": args.device, "trust_checkpoints": args.trust_checkpoints}
    if what == "train":
        summary = jobs.train_job(spec, stamp=args.stamp, log=print, restart=args.restart, **options)
    else:
        summary = jobs.evaluate_job(spec, stamp=args.stamp, log=print, **options)
    print(
        f"{what} job {spec.job_id}: {len(summary['runs'])} runs under {spec.runs_root} "
        f"in {time.perf_counter() - began:.1f}s" + (f" -> {args.stamp}" if args.stamp else "")
    )
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from mtl_pipelines.evaluate import evaluate_run

    if args.job is not None:
        if args.run_dir is not None or args.stl:
            return _fail("--job evaluates the runs of a job (their STL runs come from the job): give no run_dir/--stl")
        return _run_job(args, "evaluate")
    if args.run_dir is None:
        return _fail("give a run directory or --job")
    result = evaluate_run(
        args.run_dir,
        stl_runs=args.stl,
        progress=None if not args.quiet else False,
        device=args.device,
        trust_checkpoints=args.trust_checkpoints,
    )
    n = sum(len(v) for v in result["corrupted"].values())
    print(
        f"evaluated {args.run_dir}: test epochs {result['epochs']} ({result['selection']}), "
        f"{n} corrupted test sets -> {Path(args.run_dir) / 'eval.json'}"
    )
    return 0


def _cmd_prepare(args: argparse.Namespace) -> int:
    from mtl_pipelines import grid

    report = grid.prepare(args.dataset, root=args.root, profile=args.profile, stamp=args.stamp, partial=args.partial)
    print(report)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from mtl_pipelines import grid, report

    profile = grid.load_profile(args.profile)
    studies = grid.load_studies()
    in_profile = [s for s in studies if profile["studies"] == "all" or s in profile["studies"]]
    chosen = in_profile if args.study in ("all", "index") else [args.study]
    for study_id in chosen:
        if study_id not in in_profile:
            return _fail(
                f"unknown study {study_id!r} for profile {args.profile!r}; valid studies: "
                f"{', '.join(in_profile)} (or 'all', 'index')"
            )
    if args.study == "index":  # from the summaries the study reports wrote: no table is recomputed
        written = report.build_index(profile, [studies[s] for s in chosen])
    else:
        written = report.build(profile, [studies[s] for s in chosen], index=args.study == "all")
    print(f"report: {len(chosen)} studies, {len(written)} files under {profile['reports_dir']}")
    return 0


def _cmd_grid(args: argparse.Namespace) -> int:
    from mtl_pipelines import grid

    profile = grid.load_profile(args.profile)
    runs = grid.expand(profile)
    if args.run:
        if args.run not in runs:
            return _fail(
                f"unknown run {args.run!r} in profile {args.profile!r}; `mtl grid --profile {args.profile}` lists them"
            )
        runs = {args.run: runs[args.run]}
    if args.write:
        n = grid.write_configs(profile, runs)
        print(f"grid {profile['name']}: {len(runs)} runs, {n} configs written under {grid.configs_dir(profile)}")
    else:
        for run in runs.values():
            print(run.run_id, ",".join(sorted(run.studies)))
        print(
            f"grid {profile['name']}: {len(runs)} runs in {len({s for r in runs.values() for s in r.studies})} studies"
        )
    return 0


def _cmd_dvc(args: argparse.Namespace) -> int:
    from mtl_pipelines import dvc

    root = Path(args.root)
    if args.summary:
        written = dvc.write_summary(args.profile, args.summary)
        print(f"dvc summary of {args.summary}: {written[0]} and {len(written) - 1} figures")
        return 0
    if args.check:
        stale = dvc.check(args.profile, root)
        if stale:
            return _fail(f"{', '.join(stale)} out of date: run `mtl dvc --profile {args.profile}`")
        print(f"dvc.yaml and params.yaml are up to date for profile {args.profile}")
        return 0
    stages = dvc.write(args.profile, root)
    print(f"wrote {root / 'dvc.yaml'} ({stages} stages) and {root / 'params.yaml'} for profile {args.profile}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from mtl_pipelines import grid, methods

    if args.what == "studies":
        for sid, study in grid.load_studies().items():
            print(f"{sid}\t{study['builder']}\t{study['title']}")
    elif args.what == "methods":
        print("\n".join(methods.names()))
    elif args.what == "datasets":
        import mtl_data

        print("\n".join(f"{n}\t{mtl_data.summary(n)}" for n in mtl_data.names()))
    elif args.what == "models":
        import mtl_models

        print("\n".join(mtl_models.names()))
    else:
        print("\n".join(grid.profile_names()))
    return 0


def _job_arguments(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--job",
        help="the runs of a workflow job, one after the other in this process: a job manifest "
        "(<results>/jobs/<job>.yaml, written by the workflow) or, with --params, a job id",
    )
    s.add_argument("--runs-root", help="with --params --job: the directory holding the run directories")
    s.add_argument("--stamp", help="with --job: file written when every run succeeded (for workflow managers)")


def _run_arguments(s: argparse.ArgumentParser, what: str) -> None:
    default = "train.device of the run's config (default auto)" if what == "train" else "auto"
    s.add_argument(
        "--device",
        help=f"where to {what}: auto (CUDA when available), cpu, cuda, cuda:N (default: {default}); "
        "a CUDA device that is not there is an error",
    )
    s.add_argument(
        "--trust-checkpoints",
        action="store_true",
        help="load checkpoints of the old pickled format (before the safe format) with full unpickling, which "
        "can run code: only for files you wrote yourself; they are rewritten in the safe format "
        "(also: MTL_TRUST_CHECKPOINTS=1)",
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mtl", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    profile_help = "profile of the grid: smoke, default or paper (default: default)"

    s = sub.add_parser("prepare", help="validate a real dataset or render a stand-in into its cache")
    s.add_argument("dataset", help="dataset name (mtl list datasets) or benchmark key of the profile")
    s.add_argument("--root", help="data directory of a real dataset")
    s.add_argument("--profile", default="default", help=profile_help)
    s.add_argument("--stamp", help="file written when done (for workflow managers)")
    s.add_argument(
        "--partial",
        action="store_true",
        help="accept a copy with fewer samples than the official splits (the loaders' strict=False)",
    )
    s.set_defaults(func=_cmd_prepare)

    s = sub.add_parser("train", help="train (or resume) the run of a YAML config")
    s.add_argument("config", nargs="?", help="YAML run config (see pipelines/README.md)")
    s.add_argument("--run", help="instead of a config file: a run id of the grid (mtl grid lists them)")
    s.add_argument("--profile", default="default", help=profile_help)
    s.add_argument("--params", help="with --run: read the run's config from this generated params.yaml (DVC)")
    s.add_argument("--run-dir", help="output directory (default results/runs/<name>-<hash>)")
    _job_arguments(s)
    _run_arguments(s, "train")
    s.add_argument(
        "--restart",
        action="store_true",
        help="delete the run's files (config, checkpoint, metrics, final/eval) and train it from the start",
    )
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_train)

    s = sub.add_parser("evaluate", help="selected clean and corrupted test metrics of a finished run")
    s.add_argument("run_dir", nargs="?", help="run directory written by mtl train")
    s.add_argument("--stl", nargs="*", default=[], help="evaluated STL runs (baseline of best_val selection)")
    s.add_argument("--params", help="with --job: read the job from this generated params.yaml (DVC)")
    _job_arguments(s)
    _run_arguments(s, "evaluate")
    s.add_argument("--quiet", action="store_true", help="no progress bar")
    s.set_defaults(func=_cmd_evaluate)

    s = sub.add_parser("report", help="tables and figures of a study (or all) from evaluated runs")
    s.add_argument("study", help="study id (mtl list studies), 'all', or 'index' (only the index)")
    s.add_argument("--profile", default="default", help=profile_help)
    s.set_defaults(func=_cmd_report)

    s = sub.add_parser("grid", help="the runs of a profile (deduplicated across studies)")
    s.add_argument("--profile", default="default", help=profile_help)
    s.add_argument("--write", action="store_true", help="write every run config under the results directory")
    s.add_argument("--run", help="only this run id")
    s.set_defaults(func=_cmd_grid)

    s = sub.add_parser("dvc", help="generate dvc.yaml + params.yaml from the studies of a profile")
    s.add_argument("--profile", default="default", help=profile_help)
    s.add_argument("--root", default=".", help="directory receiving dvc.yaml and params.yaml")
    s.add_argument("--check", action="store_true", help="only check that they are up to date")
    s.add_argument(
        "--summary",
        metavar="STUDY",
        help="instead: write the study's row of `dvc metrics show` and copy its figures for `dvc plots show` "
        "(what the report stages of dvc.yaml run after `mtl report STUDY`)",
    )
    s.set_defaults(func=_cmd_dvc)

    s = sub.add_parser("list", help="names of studies, methods, datasets, models or profiles")
    s.add_argument("what", choices=["studies", "methods", "datasets", "models", "profiles"])
    s.set_defaults(func=_cmd_list)
    return p


def _quiet_broken_pipe() -> int:
    """The reader of our stdout went away (``mtl list methods | head``): stop quietly, as Unix tools do.
    stdout is pointed at /dev/null so that the interpreter's final flush does not complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # a stdout without a file descriptor (redirected in-process): nothing to do
        pass
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        code = int(args.func(args))
        sys.stdout.flush()  # a closed pipe shows here, inside the handler, not at interpreter exit
        return code
    except BrokenPipeError:  # an OSError: before the handler of those
        return _quiet_broken_pipe()
    except (ValueError, OSError, FloatingPointError, JobFailed) as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted")


if __name__ == "__main__":
    sys.exit(main())
