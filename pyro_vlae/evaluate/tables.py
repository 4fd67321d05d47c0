"""Plain-text tables of evaluation results, as ``pyro-vlae evaluate`` prints them and
``report.html`` shows them; a missing number is "–", with the reason it is missing
(:func:`~pyro_vlae.evaluate.formatting.dash`)."""

from __future__ import annotations

from .formatting import cells, dash
from .results import Evaluation, Fidelity, Hierarchy, InterventionMatrix

#: why an ordering score is missing (:func:`~pyro_vlae.evaluate.hierarchy.ordering_score` is undefined)
NO_ORDERING = "undefined: the data set gives no two factors different abstraction levels"


def format_evaluation(evaluation: Evaluation) -> str:
    """A plain-text table of an evaluation."""
    iw = evaluation.iwae  # an evaluation of a model, not of a run folder, has no run, model or data set name
    model, plugin, split = (getattr(evaluation.run, key, None) or default
                            for key, default in (("model", "model"), ("plugin", "data"), ("split", "")))
    lines = [
        f"{model} on {plugin} ({split}, {evaluation.num_points} points)",
        f"  ELBO            {evaluation.elbo:10.2f} nats   (reconstruction {evaluation.recon:.2f})",
        f"  IWAE-{iw.samples:<10d} {iw.value:10.2f} nats   (on {iw.num_points} points, "
        f"{iw.points}; ELBO of the same points {dash(iw.elbo)}, of the same draws {iw.elbo_same_draws:.2f})",
    ]
    if evaluation.bits_per_dim is not None:
        lines.append(f"  bits/dim        {evaluation.bits_per_dim:10.4f}")
    lines.append(f"  {'layer':<6} {'KL':>8} {'share':>6} {'active':>7}  PCA explained variance")
    for name, info in evaluation.layers.items():
        pca = " ".join(f"{v:.2f}" for v in info.pca_explained_variance)
        lines.append(f"  {name:<6} {info.kl:8.2f} {100 * info.kl_share:5.0f}% "
                     f"{info.active_units:>3}/{info.units:<3}  {pca}")
    lines += _fade_in_notes(evaluation)
    if evaluation.hierarchy is not None:
        lines += format_hierarchy(evaluation.hierarchy)
    if evaluation.intervention is not None:
        lines += format_intervention(evaluation.intervention)
    if evaluation.fidelity is not None:
        lines += format_fidelity(evaluation.fidelity)
    return "\n".join(lines)


def _fade_in_notes(evaluation: Evaluation) -> list[str]:
    """A note for each layer the fade-in had not fully switched on by the run's last step."""
    fade = evaluation.fade_in
    if not fade:
        return []
    notes = []
    for (name, info), gate, full in zip(evaluation.layers.items(), fade["gates"], fade["fully_on_at"]):
        if gate < 1:
            state = "never switched on" if gate == 0 else f"never fully on (gate {gate:.2f} in its last step)"
            notes.append(f"  note: {name} was {state}: the fade-in opens it fully at step {full}, the run stopped at "
                         f"{fade['steps']}; its KL of {info.kl:.2f} nats is that of a path the decoder was kept "
                         "from using, not what the layer learns")
    return notes


def format_hierarchy(h: Hierarchy) -> list[str]:
    """Lines of a plain-text table of the hierarchy metrics."""
    lines = ["  layer × factor (probe informativeness; normalised MI in brackets)",
             "  " + " " * 6 + "".join(f"{f:>14}" for f in h.factors)]
    for i, name in enumerate(h.layers):
        row = "".join(f"{dash(p):>7} ({dash(n)})" for p, n in zip(h.probe[i], h.nmi[i]))
        lines.append(f"  {name:<6}{row}   MIG {dash(h.mig_per_layer[i], why='a one-unit layer has no gap')}")
    if any(v is None for row in h.probe + h.nmi for v in row):
        lines.append("  –: a factor that takes one value in these points, so nothing can predict it")
    ordering = (f"{dash(h.ordering_probe)} (probe), {dash(h.ordering_nmi)} (NMI)"
                if h.ordering_probe is not None else dash(None, why=NO_ORDERING))
    lines.append(f"  ordering score {ordering}; MIG {dash(h.mig, why='needs two or more latent units')}")
    return lines


def format_intervention(matrix: InterventionMatrix) -> list[str]:
    """Lines of a plain-text table of the intervention matrix."""
    names = matrix.factors
    width = max(9, *(len(n) + 1 for n in names))
    lines = [
        f"  intervention: change of each factor when only this layer is re-drawn "
        f"(1 = two independent samples; {matrix.pairs} pairs)",
        "  " + " " * 9 + "".join(f"{n:>{width}}" for n in names),
    ]
    for i, layer in enumerate(matrix.layers):
        lines.append(f"  {layer:<9}" + cells(matrix.matrix[i], width))
    lines.append(f"  {'baseline':<9}" + cells(matrix.baseline, width) + "   (unnormalised)")
    if any(v is None for row in matrix.matrix for v in row):
        lines.append("  –: the factor does not change between two independent samples (a zero baseline), "
                     "so a change cannot be normalised")
    if matrix.ordering is None:
        lines.append(f"  ordering score {dash(None, why='intervention; ' + NO_ORDERING)}")
    else:
        lines.append(f"  ordering score {matrix.ordering:.2f} (intervention)")
    if matrix.reader:
        quality = ", ".join(f"{n} {q:.3f}" for n, q in matrix.reader["quality"].items())
        lines.append(f"  factor reader: held-out quality {quality} (needs {matrix.reader['min_quality']}; "
                     f"{matrix.reader.get('steps')} steps, {matrix.reader.get('seconds')} s)")
    for name, ratio in (matrix.narrow or {}).items():
        lines.append(f"  warning: the samples hardly vary in {name} (baseline {ratio:.2f} of the test images' "
                     f"spread): its column is a ratio of two small numbers, not a measure of control")
    if matrix.reader_refused:
        lines.append("  factor reader refused: " + matrix.reader_refused.replace("\n", " "))
    return lines


def format_fidelity(fidelity: Fidelity) -> list[str]:
    """Lines of a plain-text table of the sample fidelity."""
    names = fidelity.factors
    width = max(9, *(len(n) + 1 for n in names))
    measure = {"categorical": "TV", "circular": "TV", "continuous": "W1/sd", "statistic": "W1/sd"}
    lines = [
        f"  sample fidelity: distance between {fidelity.num_samples} samples and as many test images "
        "(0 = same distribution)",
        "  " + " " * 13 + "".join(f"{n:>{width}}" for n in names),
        "  " + " " * 13 + "".join(f"{measure[fidelity.kinds[n]]:>{width}}" for n in names),
        f"  {'distance':<13}" + cells((fidelity.distance[n] for n in names), width),
        f"  {'spread model':<13}" + cells((fidelity.sample_spread[n] for n in names), width),
        f"  {'spread data':<13}" + cells((fidelity.data_spread[n] for n in names), width),
    ]
    if fidelity.confident is not None:
        lines.append(f"  read confidently (p ≥ {fidelity.confidence}): {100 * fidelity.confident:.0f} % of "
                     f"samples, {100 * fidelity.confident_data:.0f} % of test images")
    return lines


__all__ = ["NO_ORDERING", "format_evaluation", "format_fidelity", "format_hierarchy", "format_intervention"]
