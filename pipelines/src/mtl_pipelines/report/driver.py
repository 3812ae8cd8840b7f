"""The report driver: per study, its builder's tables and figures, the verdicts of its claims
(:func:`mtl_pipelines.claims.evaluate_study`), ``table.md``/``.tex``/``.csv``/``.html``, ``claims.json`` and its
index row; then the index (verdicts first).

A table whose numbers the profile runs only to check the pipeline (:func:`mtl_pipelines.claims.is_pipeline_check`
of the benchmarks it shows, or of the probe) is labelled so at its top and gets no distance figure."""

from __future__ import annotations

import csv
import io as stdio
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mtl_pipelines import claims, facts, grid, io, kinds
from mtl_pipelines.report import registry
from mtl_pipelines.report.html import render_study
from mtl_pipelines.report.index import SUMMARY, StudySummary, Verdict, distance, verdict_block, write_index
from mtl_pipelines.report.results import Results, load_results
from mtl_pipelines.report.tables import CSV_FIELDS, DASH, Table

__all__ = ["build", "build_index", "deviation_lines", "pipeline_check_reason", "scale_line", "write_study"]


def _test_dataset(cfg_json: str) -> Any:
    import mtl_data

    cfg = json.loads(cfg_json)
    options = {**cfg.get("options", {}), **cfg.get("split_options", {}).get("test", {})}
    return mtl_data.create(cfg["name"], split="test", root=cfg.get("root"), **options)


def scale_line(runs: Sequence[grid.RunSpec]) -> tuple[str, str]:
    """What data the runs used (``stand-in``/``real``, the dataset's own description, sizes) and at which scale;
    runs of another kind than supervised are described by their kind (:mod:`mtl_pipelines.kinds`)."""
    by_kind: dict[str, list[grid.RunSpec]] = {}
    for run in runs:
        by_kind.setdefault(run.kind, []).append(run)
    lines = [
        kinds.KINDS[kind].load("describe")(group) if kind != kinds.SUPERVISED else _supervised_scale_line(group)
        for kind, group in by_kind.items()
    ]
    return "; ".join(d for d, _ in lines), "; ".join(s for _, s in lines)


def _supervised_scale_line(runs: Sequence[grid.RunSpec]) -> tuple[str, str]:
    data = []
    datasets = {
        json.dumps({k: v for k, v in r.config["dataset"].items() if k != "tasks"}, sort_keys=True) for r in runs
    }
    for ds in sorted(datasets):
        cfg = json.loads(ds)
        dataset = _test_dataset(ds)
        kind = "stand-in" if dataset.is_standin else "real"
        sizes = {k: v.get("size") for k, v in cfg.get("split_options", {}).items() if "size" in v}
        extra = f", sizes {sizes}" if sizes else ""
        extra += f", subset {cfg['options']['subset']}" if "subset" in cfg.get("options", {}) else ""
        data.append(f"{kind}: {cfg['name']} ({dataset.description}{extra})")
    epochs = sorted({r.config["train"]["epochs"] for r in runs})
    seeds = sorted({r.seed for r in runs})
    caps = {r.config["train"].get("max_steps_per_epoch") for r in runs}  # per benchmark (CelebA, QM9 differ)
    steps = sorted(c for c in caps if c is not None) + ([None] if None in caps else [])
    shown = steps[0] if len(steps) == 1 else steps
    scale = f"epochs {epochs}, seeds {seeds}, max steps/epoch {shown}"
    return "; ".join(data), scale


def deviation_lines(study_id: str) -> list[str]:
    """The study's deviations from its paper's protocol (``protocol_facts.yaml``), one line each: the field,
    what the paper states, what the runs do and why."""
    return [
        f"{d['field']}: paper {d['paper']!r}, ours {d['ours']!r} — {d['reason']}" for d in facts.deviations(study_id)
    ]


def pipeline_check_reason(profile: Mapping[str, Any], study: Mapping[str, Any], table: Table) -> str | None:
    """Why ``table``'s numbers cannot be compared with the paper's in ``profile`` (None: they can). The benchmarks
    of a table are those it names (:attr:`Table.benchmarks`), else all of its study's; one that the profile
    runs as a pipeline check makes the table one."""
    where = f"profile `{profile.get('name', '?')}`"
    if not study.get("experiments"):  # a probe computing its own numbers
        if not claims.is_pipeline_check(profile, study):
            return None
        settings = (profile.get("probes") or {}).get(study["builder"])
        scaled = f" ({', '.join(f'{k} {v}' for k, v in settings.items())})" if settings else ""
        return f"{where} runs this probe scaled down{scaled}; the paper's settings are those of profile `paper`"
    benchmarks = table.benchmarks or list(dict.fromkeys(b["benchmark"] for b in study["experiments"]))
    checked = [b for b in benchmarks if claims.is_pipeline_check(profile, study, b)]
    if not checked:
        return None
    return (
        f"{where} runs {', '.join(checked)} at a pipeline-check scale; comparable numbers need "
        f"{claims.needed_scale(study, checked[0])}"
    )


def _write_tables(out: Path, lines: list[str], tables: Sequence[Table]) -> list[Path]:
    io.write_text(out / "table.md", "\n".join(lines) + "\n")
    io.write_text(out / "table.tex", "".join(t.latex() for t in tables))
    buffer = stdio.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for t in tables:
        writer.writerows(t.csv_rows())
    io.write_text(out / "table.csv", buffer.getvalue())
    return [out / "table.md", out / "table.tex", out / "table.csv"]


def _markdown(
    study: Mapping[str, Any],
    profile_name: str,
    tables: Sequence[Table],
    figures: Sequence[Path],
    missing: Sequence[str],
    verdicts: Sequence[Verdict] = (),
) -> list[str]:
    """The lines of a study's ``table.md``: its verdicts first, then its tables."""
    lines = [f"# {study['title']}", "", f"Study `{study['id']}` (seed {study['paper']}), profile `{profile_name}`.", ""]
    if study.get("note"):
        lines += [study["note"], ""]
    lines += verdict_block(verdicts, link=False)
    lines += [t.markdown() for t in tables]
    lines += [f"![{p.stem}]({p.name})" for p in figures]
    if missing:
        lines += ["", "Not run on this profile:"] + [f"- {m}" for m in missing]
    return lines


def write_study(
    out: Path,
    study: Mapping[str, Any],
    profile_name: str,
    tables: Sequence[Table],
    figures: Sequence[Path],
    missing: Sequence[str],
    summary: StudySummary,
) -> list[Path]:
    """A study's files in ``out``: ``table.md``/``.tex``/``.csv``/``.html``, ``summary.json`` (its index row, with
    the verdicts) and, for a study with claims, ``claims.json`` (the verdict records); returns them with the
    ``figures`` (already written in ``out``)."""
    io.write_json(out / SUMMARY, summary.to_json())
    lines = _markdown(study, profile_name, tables, figures, missing, summary.verdicts)
    written = [*figures, *_write_tables(out, lines, tables)]
    page = render_study(study, profile_name, tables, [p.name for p in figures], missing, summary.verdicts)
    io.write_text(out / "table.html", page)
    written += [out / "table.html", out / SUMMARY]
    if study.get("claims"):
        io.write_json(out / claims.CLAIMS_FILE, [v.to_json() for v in summary.verdicts])
        written.append(out / claims.CLAIMS_FILE)
    return written


def build(profile: Mapping[str, Any], studies: Sequence[Mapping[str, Any]], index: bool = True) -> list[Path]:
    """Write the reports of ``studies`` under ``profile['reports_dir']``: per study its tables (``table.md``,
    ``.tex``, ``.csv``, ``.html``), figures and ``summary.json`` (its index row); and, with ``index``, the
    index of these studies."""
    plan = grid.plan(profile)
    out_root = Path(profile["reports_dir"])
    written: list[Path] = []
    summaries = []
    for study in studies:
        builder = registry.get(study["builder"])
        # named as this study names them (label, reference setting): a run shared by studies has one entry in runs
        runs = plan.by_study.get(study["id"]) or [r for r in plan.runs.values() if study["id"] in r.studies]
        out = out_root / study["id"]
        missing = plan.unavailable.get(study["id"], [])
        tables: list[Table] = []
        figures: list[Path] = []
        results = Results()
        # A probe computes its own numbers: built unless part of its study cannot run; a builder of trained
        # runs is built from the runs this profile has.
        if (not missing) if builder.probe else bool(runs):
            if runs:
                results = load_results(profile, {r.run_id: r for r in runs})
            tables = builder.tables(study, profile, runs, results)
            drawn = builder.figures is not None and (bool(runs) or builder.probe)
            figures = builder.figures(study, runs, results, tables, out) if drawn else []
            for table in tables:  # the protocol facts this study deliberately does not follow
                table.deviations = table.deviations or deviation_lines(study["id"])
                table.pipeline_check = table.pipeline_check or pipeline_check_reason(profile, study, table)
            if runs:
                data, scale = scale_line(runs)
                for table in tables:  # every table says at its top what data and scale its numbers come from
                    table.data_scale = table.data_scale or f"Data: {data}. Scale: {scale}."
        verdicts: list[Verdict] = []
        if study.get("claims"):  # from the runs' seeds, or from the probe's own numbers (its tables' data)
            probe_tables = tables if builder.probe else ()
            verdicts = claims.evaluate_study(profile, study, runs, results, probe_tables)
        summary = _summary(study, runs, missing, tables, verdicts)
        summaries.append(summary)
        written += write_study(out, study, profile["name"], tables, figures, missing, summary)
    if index:
        written += write_index(profile, summaries, out_root)
    return written


def build_index(profile: Mapping[str, Any], studies: Sequence[Mapping[str, Any]]) -> list[Path]:
    """``index.md`` / ``index.html`` from the ``summary.json`` each study's report wrote (FileNotFoundError
    names a study whose report is missing), without recomputing any table."""
    out_root = Path(profile["reports_dir"])
    summaries = []
    for study in studies:
        path = out_root / study["id"] / SUMMARY
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: run `mtl report {study['id']}` first")
        summaries.append(StudySummary.from_json(json.loads(path.read_text())))
    return write_index(profile, summaries, out_root)


def _summary(
    study: Mapping[str, Any],
    runs: Sequence[grid.RunSpec],
    missing: Sequence[str],
    tables: Sequence[Table],
    verdicts: Sequence[Verdict] = (),
) -> StudySummary:
    """The study's row of the index, with the verdicts of its claims."""
    data, scale = scale_line(runs) if runs else (DASH, DASH)
    return StudySummary(
        id=study["id"],
        title=study["title"],
        data=DASH if not runs else ("stand-in" if "stand-in:" in data else "real"),
        scale=scale,
        runs=len(runs),
        distance=distance(tables),
        not_run=len(missing),
        verdicts=tuple(verdicts),
    )
