"""One HTML page per run, and one table comparing several runs.

:func:`write_report` gathers a run folder's configuration, test summary, evaluation and
pictures into ``report.html`` (pictures embedded, so the page is self-contained).
:func:`compare_runs` reads the ``evaluation.json`` of several runs into rows;
:func:`write_comparison` saves them as Markdown, CSV and JSON, with the mean ± standard
deviation per model over seeds, separately for each data set and number of layers.
"""

from __future__ import annotations

import base64
import csv
import html
import itertools
import json
import os
import statistics
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, make_folder, write_text
from ..errors import CheckpointError, ConfigError, StaleWarning
from ..run_folder import (
    CHECKPOINT,
    CONFIG,
    EVALUATION,
    GIBBS,
    HIERARCHY,
    INTERVENTION,
    LATENTS,
    LAYER,
    LAYERS,
    LOSS,
    RECONSTRUCTIONS,
    REPORT,
    SAMPLES,
    SUMMARY,
    TRAVERSALS,
    check_not_run_files,
    find_picture,
    load_checkpoint,
    write_json,
)
from .formatting import DASH, dash
from .results import Evaluation
from .storage import load_evaluation
from .tables import format_evaluation

#: pictures shown in a report, in this order, when the run folder has them
PICTURES = [
    (LOSS, "Training curves"),
    (LATENTS, "KL per layer and PCA of posterior means"),
    (INTERVENTION, "Interventional layer × factor matrix: how much each factor of the generated images "
     "changes when only this layer is re-drawn (1 = as much as between two independent samples)"),
    (HIERARCHY, "Layer × factor matrix (probes of posterior means)"),
    (SAMPLES, "Samples"),
    (RECONSTRUCTIONS, "Reconstructions (originals and reconstructions, alternating)"),
    (LAYERS, "Per-layer conditional samples: layer l re-drawn along each row, the others fixed"),
    (TRAVERSALS, "Latent traversals (pyro-vlae traverse): one layer's code varied along each row, the others fixed"),
    (GIBBS, "Gibbs chains on the bottom layer (pyro-vlae gibbs; left, one chain per row, the first column the "
     "start) beside ancestral samples of the full model (right)"),
]


def _image(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _read_json(file: Path) -> dict[str, Any]:
    """A JSON object written by ``pyro-vlae fit``, or :class:`CheckpointError`."""
    try:
        value = json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{file} is corrupt ({err})", "restore it, or train the run again") from err
    if not isinstance(value, dict):
        raise CheckpointError(f"{file} is not one written by `pyro-vlae fit`", "restore it, or train the run again")
    return value


def stale_note(path: str | Path, evaluation: dict[str, Any]) -> str | None:
    """A sentence saying that ``evaluation`` is of an older step than the checkpoint of the
    run folder ``path`` (``None`` when it is of the checkpoint's step, or there is no checkpoint);
    it is also announced as a :class:`~pyro_vlae.errors.StaleWarning`."""
    path = Path(path)
    if not (path / CHECKPOINT).exists():
        return None
    step = load_checkpoint(path)["trainer"]["step"]
    if evaluation.get("step") == step:
        return None
    of = f"of step {evaluation['step']}" if "step" in evaluation else "of an unrecorded step"
    note = (f"the evaluation of {path} is {of}, but its checkpoint is of step {step}: "
            f"run `pyro-vlae evaluate {path}` again for current numbers")
    warnings.warn(note, StaleWarning, stacklevel=2)
    return note


def write_report(path: str | Path) -> Path:
    """Write ``report.html`` into the run folder ``path`` (it needs ``evaluation.json``); an
    evaluation older than the checkpoint is marked so (:func:`stale_note`)."""
    path = Path(path)
    if not (path / CONFIG).exists():
        raise CheckpointError(
            f"{path} is not a run folder (no {CONFIG})", "pass a folder written by `pyro-vlae fit`"
        )
    config = _read_json(path / CONFIG)
    evaluation = load_evaluation(path)
    parts = [f"<h1>{html.escape(path.name)}: {html.escape(str(config.get('model')))} on "
             f"{html.escape(str(config.get('plugin')))}</h1>"]
    if (note := stale_note(path, evaluation)) is not None:
        parts.append(f"<p><strong>Out of date:</strong> {html.escape(note)}.</p>")
    settings = [(k, json.dumps(v)) for k, v in config.items()]
    parts.append("<h2>Configuration</h2>" + _table(settings, ["option", "value"]))
    if (path / SUMMARY).exists():
        summary = _read_json(path / SUMMARY)
        parts.append(f"<p>Trained {summary.get('steps')} steps in {summary.get('train_seconds')} s.</p>")
    table = format_evaluation(Evaluation.from_json(evaluation))
    parts.append("<h2>Evaluation</h2><pre>" + html.escape(table) + "</pre>")
    for name, caption in PICTURES:
        if (picture := find_picture(path, name)) is not None:
            parts.append(_image(picture, caption))
    for layer in itertools.count(1):
        if (picture := find_picture(path, LAYER, layer=layer)) is None:
            break
        parts.append(_image(picture, f"layer{layer}: conditional samples of this layer"))
    style = ("body{font-family:sans-serif;max-width:1000px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px;font-size:90%}img{max-width:100%}"
             "figure{margin:1.5em 0}figcaption{color:#555;font-size:90%}")
    page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(path.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n")
    return write_text(path / REPORT, page)


# ------------------------------------------------------------------ comparison
def _layers(values: Sequence[Any], fmt: str = "{:.1f}") -> str:
    return "/".join(fmt.format(v) for v in values)


def data_identity(path: str | Path, evaluation: dict[str, Any]) -> str:
    """The data set a run folder was trained and evaluated on, as one line: the plugin, its
    options and where its files are (``summary.json``'s files, else ``--data-dir``), so that
    two image folders read by the same plugin are two data sets."""
    path = Path(path)
    config = json.loads((path / CONFIG).read_text()) if (path / CONFIG).exists() else {}
    summary = json.loads((path / SUMMARY).read_text()) if (path / SUMMARY).exists() else {}
    label = str(config.get("plugin") or evaluation.get("plugin"))
    options = config.get("plugin_options") or {}
    if options:
        label += " " + ",".join(f"{k}={v}" for k, v in sorted(options.items()))
    files = (summary.get("data") or {}).get("files") or ([config["data_dir"]] if config.get("data_dir") else [])
    if files:
        label += " @ " + (os.path.commonpath(files) if len(files) > 1 else files[0])
    return label


def compare_runs(paths: Sequence[str | Path]) -> list[dict[str, Any]]:
    """One row per run folder with the headline numbers of its ``evaluation.json``, its data
    set (:func:`data_identity`) and its number of latent layers."""
    if not paths:
        raise ConfigError("compare needs at least one run folder", "pass run folders holding evaluation.json")
    rows = []
    for p in paths:
        e = load_evaluation(p)
        note = stale_note(p, e)
        layers = e["layers"]
        h = e.get("hierarchy") or {}
        iv = e.get("intervention") or {}
        row = {
            "run": Path(p).name,
            "model": e.get("model"),
            "data": data_identity(p, e),
            "num_layers": len(layers),
            "seed": e.get("seed"),
            "elbo": e["elbo"],
            "iwae_samples": e["iwae"]["samples"],
            f"iwae_{e['iwae']['samples']}": e["iwae"]["value"],
            "kl": [layers[n]["kl"] for n in layers],
            "active_units": [layers[n]["active_units"] for n in layers],
            "ordering_probe": h.get("ordering_probe"),
            "ordering_nmi": h.get("ordering_nmi"),
            "mig": h.get("mig"),
            "ordering_intervention": iv.get("ordering_intervention"),
        }
        if note is not None:
            row["stale"] = note
        if iv:
            row["intervention_layers"] = iv["layers"]
            row["intervention_factors"] = iv["factors"]
            row["intervention"] = iv["intervention"]
        if fid := e.get("fidelity"):
            row["fidelity"] = fid["distance"]
            row["confident"], row["confident_data"] = fid.get("confident"), fid.get("confident_data")
        if h:
            row["layers"] = h["layers"]
            row["factors"] = h["factors"]
            row["probe"] = h["probe"]
        rows.append(row)
    return rows


def _mean_sd(values: Sequence[float | None]) -> str:
    v = [x for x in values if x is not None]
    if not v:
        return DASH
    if len(v) == 1:
        return dash(v[0])
    return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}"


def _iwae_cell(rows: Sequence[dict[str, Any]], samples: int) -> str:
    """The IWAE-``samples`` column's cell for ``rows`` (mean ± sd over the runs evaluated with
    that K), saying why runs evaluated with another K have no value there."""
    have = [r for r in rows if r["iwae_samples"] == samples]
    if not have:
        others = sorted({r["iwae_samples"] for r in rows})
        return f"not run (evaluated with IWAE-{'/'.join(map(str, others))})"
    cell = _mean_sd([r[f"iwae_{samples}"] for r in have])
    return cell if len(have) == len(rows) else f"{cell} ({len(have)} of {len(rows)} runs)"


def format_comparison(rows: Sequence[dict[str, Any]]) -> str:
    """Markdown, per data set and number of layers (runs on different data or with another
    number of layers are never averaged together): one line per run, then mean ± sd per
    model, then each model's mean layer × factor matrix (probe informativeness)."""
    groups: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["num_layers"]), []).append(r)
    lines = []
    if len(groups) > 1:
        lines += [f"These runs are on {len({d for d, _ in groups})} data set(s) with "
                  f"{len({n for _, n in groups})} number(s) of layers: each combination is summarised "
                  "separately.", ""]
    for (data, num_layers), group in groups.items():
        lines += [f"## {data}, {num_layers} layer(s)", ""] + _format_group(group) + [""]
    return "\n".join(lines).rstrip("\n")


def _format_group(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The tables of :func:`format_comparison` for runs on one data set and number of layers."""
    ks = sorted({r["iwae_samples"] for r in rows})
    iwae_cols = [f"IWAE-{k}" for k in ks]
    header = ["run", "ELBO", *iwae_cols, "KL per layer", "active units",
              "ordering (probe)", "ordering (NMI)", "MIG", "ordering (intervention)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        iwae = " | ".join(_iwae_cell([r], k) for k in ks)
        lines.append(f"| {r['run']} | {dash(r['elbo'])} | {iwae} | {_layers(r['kl'])} | "
                     f"{_layers(r['active_units'], '{}')} | {dash(r['ordering_probe'])} | "
                     f"{dash(r['ordering_nmi'])} | {dash(r['mig'])} | {dash(r.get('ordering_intervention'))} |")
    models: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        models.setdefault(str(r["model"]), []).append(r)
    lines += ["", "| model | runs | ELBO | " + " | ".join(iwae_cols)
              + " | KL per layer | ordering (probe) | ordering (NMI) | MIG | ordering (intervention) |",
              "|" + "---|" * (8 + len(ks))]
    for model, rs in models.items():
        kl = [statistics.mean(v) for v in zip(*[r["kl"] for r in rs])]
        iwae = " | ".join(_iwae_cell(rs, k) for k in ks)
        lines.append(f"| {model} | {len(rs)} | {_mean_sd([r['elbo'] for r in rs])} | {iwae} | {_layers(kl)} | "
                     f"{_mean_sd([r['ordering_probe'] for r in rs])} | {_mean_sd([r['ordering_nmi'] for r in rs])} | "
                     f"{_mean_sd([r['mig'] for r in rs])} | "
                     f"{_mean_sd([r.get('ordering_intervention') for r in rs])} |")
    keys = ("ordering_probe", "ordering_nmi", "mig", "ordering_intervention")
    if any(r.get(k) is None for r in rows for k in keys):
        lines += ["", "–: not measured: an ordering score needs factors of two abstraction levels and MIG "
                  "factors, (intervention) needs `pyro-vlae evaluate` with --intervention and a data set "
                  "with factors"]
    lines += _mean_matrices(models, "probe", "layers", "factors", "layer × factor probe informativeness")
    lines += _mean_matrices(models, "intervention", "intervention_layers", "intervention_factors",
                            "intervention matrix (change when only this layer is re-drawn)")
    lines += _fidelity_table(models)
    stale = [f"Out of date: {r['stale']}." for r in rows if "stale" in r]
    return lines + ([""] + stale if stale else [])


def _fidelity_table(models: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Markdown: each model's sample fidelity (distance of its samples' factors to the test
    images'), mean ± sd over its runs, and the share of samples read confidently."""
    rows = {m: [r for r in rs if "fidelity" in r] for m, rs in models.items()}
    factors = list(dict.fromkeys(f for rs in rows.values() for r in rs for f in r["fidelity"]))
    if not factors:
        return []
    lines = ["", "sample fidelity: distance between the factors of samples and of test images "
             "(TV or W1/sd; 0 = the same distribution), mean over runs", "",
             "| model | runs | " + " | ".join(factors) + " | read confidently (samples / test) |",
             "|" + "---|" * (len(factors) + 3)]
    for model, rs in rows.items():
        if rs:
            cells = [_mean_sd([r["fidelity"].get(f) for r in rs]) for f in factors]
            confident = f"{_mean_sd([r['confident'] for r in rs])} / {_mean_sd([r['confident_data'] for r in rs])}"
            lines.append(f"| {model} | {len(rs)} | " + " | ".join(cells) + f" | {confident} |")
    return lines


def _mean_matrices(
    models: dict[str, list[dict[str, Any]]], key: str, layers_key: str, factors_key: str, title: str
) -> list[str]:
    """Markdown tables of each model's mean ``key`` matrix (deepest layer first), one per set
    of layers and factors, so runs on different data sets are not averaged together."""
    lines: list[str] = []
    for model, rs in models.items():
        groups: dict[tuple, list[dict[str, Any]]] = {}
        for r in rs:
            if key in r:
                groups.setdefault((tuple(r[layers_key]), tuple(r[factors_key])), []).append(r)
        for (layers, factors), group in groups.items():
            lines += ["", f"{model}: {title}, mean over {len(group)} run(s)", "",
                      "| layer | " + " | ".join(factors) + " |", "|" + "---|" * (len(factors) + 1)]
            for i in reversed(range(len(layers))):
                cells = [[r[key][i][k] for r in group if r[key][i][k] is not None] for k in range(len(factors))]
                lines.append(f"| {layers[i]} | " + " | ".join(dash(statistics.mean(c) if c else None) for c in cells)
                             + " |")
    return lines


def write_comparison(rows: Sequence[dict[str, Any]], stem: str | Path) -> list[Path]:
    """Save ``stem.md`` (:func:`format_comparison`), ``stem.csv`` (one line per run) and
    ``stem.json``, each atomically. The suffixes are added to ``stem`` (``cmp/lr0.1`` gives
    ``cmp/lr0.1.md``), after removing one of theirs; a file of a run folder is never replaced."""
    stem = Path(stem)
    if stem.suffix in (".md", ".csv", ".json"):
        stem = stem.with_suffix("")
    md, cs, js = (stem.with_name(stem.name + suffix) for suffix in (".md", ".csv", ".json"))
    check_not_run_files([md, cs, js])
    make_folder(stem.parent)
    write_text(md, format_comparison(rows) + "\n")
    flat = [{k: (_layers(v, "{}") if k in ("kl", "active_units") else v) for k, v in r.items()
             if k not in ("probe", "layers", "factors", "intervention", "intervention_layers",
                          "intervention_factors", "fidelity")}
            | {f"fidelity_{f}": d for f, d in r.get("fidelity", {}).items()} for r in rows]
    with atomic_write(cs, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in flat for k in r)))
        writer.writeheader()
        writer.writerows(flat)
    write_json(js, list(rows))
    return [md, cs, js]


__all__ = ["EVALUATION", "REPORT", "compare_runs", "format_comparison", "write_comparison", "write_report"]
