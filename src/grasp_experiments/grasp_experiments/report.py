"""`grasp-experiments report`: figures, summary.json/csv and report.md from an experiment folder's raw logs.

Every number in the report is computed here from the runs' attempts.jsonl (via analysis.summarise), the
pretraining record and novel.json; the seed's numbers (docs/method.md) are printed beside ours.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grasp_core.profiles import Profile, get_profile

from grasp_experiments import plots
from grasp_experiments.analysis import (PERCENTS, MetricSettings, load_runs, q_value_scale, summarise,
                                        summary_json)
from grasp_experiments.experiment import EXPERIMENT_FILE
from grasp_experiments.methods import METHODS, method_profile
from grasp_experiments.novel import NOVEL_FILE, PRETRAINED_KEY
from grasp_experiments.pretraining import load_comparison

HISTORY_FILE = "history.jsonl"

# The seed's Table I (acceleration ratio of ours to vanilla, Cs(50..90)) and Table II (novel objects, real UR3).
SEED_TABLE_I = {2: (2.63, 2.10, 2.16, 0.48, 0.31), 4: (3.15, 2.86, 2.66, 1.47, 1.38),
                6: (1.38, 1.39, 0.65, 0.23, 0.23), 10: (2.31, 2.27, 3.56, 3.29, 1.97)}
SEED_TABLE_II = {"vanilla": (0.3887, 0.2356), "ours": (0.7087, 0.0625), "mog": (0.2865, 0.0668),
                 "poi": (0.2787, 0.0711)}
SEED_CLAIMS = ("Sim (Fig. 5): ours reaches ~60 % G in ~200 steps, ~3x faster than vanilla; 8 seeds x 1000 steps, "
               "objects 2/4/6/10. Sim (Fig. 7): ours ~80 % G at ~200 steps, faster than MoG and PoI (10 seeds x "
               "400 steps). Real UR3 (Fig. 10): 79.1 % mean G after 500 steps vs ~21 % for vanilla.")


def _fmt(x, digits: int = 2) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _g_at(cell, step: int) -> str:
    """Mean G at attempt `step` (1-based) +- the 95 % CI half-width."""
    if step > cell.steps:
        return "—"
    i = step - 1
    mean = cell.curve_mean[i]
    if cell.curve_low is None:
        return f"{mean:.2f}"
    return f"{mean:.2f} ± {(cell.curve_high[i] - cell.curve_low[i]) / 2:.2f}"


def _history(experiment_dir: Path) -> list[dict]:
    path = experiment_dir / HISTORY_FILE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write_csv(path: Path, summary: dict) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "objects", "seeds", "steps", "success_rate", "final_g_mean", "gbar", "gbar_settled"]
                        + [f"Cs({p})" for p in PERCENTS])
        for cell in summary["cells"].values():
            writer.writerow([cell.method, cell.objects, len(cell.seeds), cell.steps, f"{cell.success_rate:.4f}",
                             f"{np.mean(cell.final_g):.4f}", f"{cell.gbar:.4f}", cell.settled]
                            + ["" if cell.cs[p] is None else cell.cs[p] for p in PERCENTS])


def _learning_text(experiment_dir: Path) -> str:
    """The learning settings the runs recorded in spec.json (grasp_core.learning), not a hard-coded text."""
    texts = set()
    for spec_path in sorted((experiment_dir / "runs").glob("*/objects_*/seed_*/spec.json")):
        spec = json.loads(spec_path.read_text())
        learning = spec.get("learning")
        if not learning:
            texts.add("recorded before grasp_core.learning existed (see the run's spec.json)")
            continue
        d, e = learning["dqn"], learning["exploration"]
        texts.add(f"preset `{learning['name']}` {' '.join(spec['spec'].get('overrides', [])) or ''}: "
                  f"{d['optimizer']} lr {d['lr']:g}, gamma {d['gamma']}, {d['loss']} loss, trains {d['trainable']}, "
                  f"batch {d['batch_size']} + {d['replay_steps']} replay step(s) ({d['replay_sampler']}), anchor "
                  f"{d['anchor_weight']:g}, BatchNorm {d['bn_mode']}; {e['mode']} exploration, epsilon "
                  f"{e['epsilon_start']} -> {e['epsilon_end']} ({e['epsilon_schedule']} over "
                  f"{e['epsilon_decay_steps']}){', failed grasps excluded' if e['exclude_failed'] else ''}; "
                  f"a model version every {learning['publish_every']} update(s)")
    return "; ".join(sorted(texts)) or "-"


@dataclass
class _Report:
    """What the sections of the report read (the experiment and its summary) and add to (summary.json, figures)."""

    experiment_dir: Path
    out_dir: Path
    settings: MetricSettings
    profile: Profile
    summary: dict
    compact: dict  # becomes summary.json
    figures: dict = field(default_factory=dict)

    @property
    def cells(self) -> dict:
        return self.summary["cells"]

    @property
    def methods(self) -> list[str]:
        return [m for m in METHODS if any(k[0] == m for k in self.cells)]

    @property
    def counts(self) -> list[int]:
        return sorted({n for (_, n) in self.cells})


def make_report(experiment_dir: str | Path, out_dir: str | Path, settings: MetricSettings,
                title: str | None = None, notes: str | Path | None = None) -> Path:
    """Write PNGs, summary.json, summary.csv and report.md into out_dir; returns the report's path.

    The report is its sections in order, each a function of the experiment that returns its markdown lines (and
    draws its figure): settings, pretraining losses (Fig. 3), learning curves (Fig. 5), Q scale, acceleration
    ratios (Table I, Fig. 6), method comparison (Fig. 7), novel objects (Table II).
    """
    experiment_dir, out_dir = Path(experiment_dir), Path(out_dir)
    if not (experiment_dir / EXPERIMENT_FILE).is_file():
        raise ValueError(f"{experiment_dir} is not an experiment folder (it has no {EXPERIMENT_FILE}): give the --out "
                         "folder of `grasp-experiments run`")
    config = json.loads((experiment_dir / EXPERIMENT_FILE).read_text())
    profile = get_profile(config["profile"])
    summary = summarise(load_runs(experiment_dir), settings)
    out_dir.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    compact = summary_json(summary)
    compact["experiment"] = {"profile": config["profile"], "finished_commands": _history(experiment_dir)}
    r = _Report(experiment_dir, out_dir, settings, profile, summary, compact)
    lines = _settings_section(r, title)
    for section in (_pretraining_section, _learning_curves_section, _q_scale_section, _acceleration_section,
                    _method_comparison_section, _novel_objects_section):
        lines += section(r)
    if notes is not None:
        lines += [Path(notes).read_text().rstrip(), ""]
    (out_dir / "summary.json").write_text(json.dumps(compact, indent=1) + "\n")
    _write_csv(out_dir / "summary.csv", summary)
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def _settings_section(r: _Report, title: str | None) -> list[str]:
    """Title, profile, the settings table (methods, seeds, learning settings from spec.json, metrics), history."""
    experiment_dir, settings, profile, cells, methods, counts = (r.experiment_dir, r.settings, r.profile, r.cells,
                                                                 r.methods, r.counts)
    lines = [f"# {title or 'Simulated learning-speed comparison'}", ""]
    lines += [f"Profile **{profile.name}**: {profile.description} Heightmap {profile.heightmap_size} px at "
              f"{profile.resolution * 1000:g} mm/px, {profile.num_rotations} rotations, zoom {profile.zoom}.", ""]
    lines += ["| setting | value |", "|---|---|"]
    lines += [f"| methods | {', '.join(methods)} |", f"| object counts | {', '.join(map(str, counts))} |",
              "| seeds per cell | " + ", ".join(
                  f"{m} {'/'.join(str(x) for x in sorted({len(c.seeds) for (mm, _), c in cells.items() if mm == m}))}"
                  for m in methods) + " |",
              "| attempts per run | " + ", ".join(
                  f"{m} {'/'.join(str(x) for x in sorted({c.steps for (mm, _), c in cells.items() if mm == m}))}"
                  for m in methods) + " |"]
    for m in methods:
        p = method_profile(m, profile.name)
        lines.append(f"| `{m}` network | {p.trunk} trunks{' (ImageNet init)' if p.imagenet or m == 'poi' else ''}"
                     f"{' warm-started from the KL-pretrained Q_s' if METHODS[m].pretrained else ''}"
                     f"{'; exploration inside MoG regions of interest' if METHODS[m].roi_exploration else ''} |")
    gbar_text = "each method's own" if settings.gbar == "own" else "a shared (the highest of the methods')"
    lines += [f"| learning (all methods) | {_learning_text(experiment_dir)} |",
              f"| metrics | G window M = {settings.window}; G-bar boxes L = {settings.box}, delta = {settings.delta}, "
              f"k = {settings.k}; Cs against {gbar_text} G-bar; baseline for m: {settings.baseline} |", ""]
    history = _history(experiment_dir)
    if history:
        lines += ["Runs of the harness on this folder:", ""]
        for h in history:
            lines.append(f"- `{h['command']}` — started {h['started']}, {h['seconds'] / 60:.1f} min, ran "
                         f"{h['ran']} run(s), skipped {h['skipped']}; machine: {h['machine']}")
        lines.append("")
    durations = [json.loads(p.read_text())["seconds_per_step"]
                 for p in sorted((experiment_dir / "runs").glob("*/objects_*/seed_*/done.json"))]
    lines += [f"Wall time per attempt (sim + inference + update, per run process): median "
              f"{np.median(durations):.2f} s over {len(durations)} runs.", ""]
    lines += ["The seed's claims: " + SEED_CLAIMS, ""]
    return lines


def _pretraining_section(r: _Report) -> list[str]:
    """Pretraining losses (seed Fig. 3), when the experiment compared them."""
    experiment_dir, out_dir, profile = r.experiment_dir, r.out_dir, r.profile
    lines: list[str] = []
    comparison = load_comparison(experiment_dir, profile.name)
    if comparison is not None:
        maps, records = comparison
        r.figures["fig3"] = plots.loss_comparison(maps, out_dir / "fig3_loss_comparison.png")
        first = next(iter(records.values()))["config"]
        lines += ["## Pretraining losses (seed Fig. 3)", "",
                  f"Q_s trained on {next(iter(records.values()))['images']} sim key-point images (train shapes, "
                  f"1-10 objects each) for {first['epochs']} epochs (batch {first['batch_size']}, "
                  f"{first.get('optimizer', 'sgd')} lr {first['lr']:g}) with each loss; maps of a held-out "
                  "6-object scene, min-max normalised to [0, 1] "
                  "(KL: softmax over pixels).", "", "![Fig. 3](fig3_loss_comparison.png)", "",
                  "| loss | first-epoch loss | last-epoch loss | map mass on objects* | pretraining time |",
                  "|---|---|---|---|---|"]
        occupied = maps["depth"] > 0.005
        r.compact["pretraining"] = {}
        for loss, info in records.items():
            pred = maps[f"pred_{loss}"]
            share = float(pred[occupied].sum() / pred.sum()) if pred.sum() > 0 else None
            lines.append(f"| {loss} | {info['epoch_losses'][0]:.4f} | {info['epoch_losses'][-1]:.4f} | "
                         f"{_fmt(share)} | {info['seconds']:.0f} s |")
            r.compact["pretraining"][loss] = {"first_epoch_loss": round(info["epoch_losses"][0], 5),
                                            "last_epoch_loss": round(info["epoch_losses"][-1], 5),
                                            "map_mass_on_objects": None if share is None else round(share, 4),
                                            "seconds": info["seconds"], "epochs": info["config"]["epochs"]}
        label_share = float(maps["label"][occupied].sum() / maps["label"].sum())
        lines += ["", f"*share of the normalised map's total value that lies on object cells (height > 5 mm, "
                  f"{occupied.mean():.0%} of the image); the label itself puts {label_share:.2f} there. The seed: KL "
                  "gives ~0 off the objects and covers each object; MSE and smooth L1 are noisier off the objects.",
                  ""]
        r.compact["pretraining_label_mass_on_objects"] = round(label_share, 4)
    return lines


def _learning_curves_section(r: _Report) -> list[str]:
    """Ours vs vanilla (seed Fig. 5) and the table of G at a few attempts."""
    out_dir, profile, summary, cells, methods, counts = r.out_dir, r.profile, r.summary, r.cells, r.methods, r.counts
    lines: list[str] = []
    pair = [m for m in ("ours", "vanilla") if m in methods]
    if pair:
        r.figures["fig5"] = plots.learning_curves(summary, pair, out_dir / "fig5_ours_vs_vanilla.png",
                                                f"G with 95 % CI over seeds ({profile.name} profile)")
        lines += ["## Learning curves: ours vs vanilla (seed Fig. 5)", "", "![Fig. 5](fig5_ours_vs_vanilla.png)", ""]
    longest = max(c.steps for c in cells.values())
    checkpoints = [s for s in (50, 100, 200, 300, 500, 1000) if s < longest] + [longest]
    lines += ["| objects | method | seeds | " + " | ".join(f"G@{s}" for s in checkpoints)
              + " | success rate (all attempts) | G-bar |", "|---|---|---|" + "---|" * (len(checkpoints) + 2)]
    for n in counts:
        for m in methods:
            cell = cells.get((m, n))
            if cell is None:
                continue
            lines.append(f"| {n} | {m} | {len(cell.seeds)} | " + " | ".join(_g_at(cell, s) for s in checkpoints)
                         + f" | {cell.success_rate:.3f} | {cell.gbar:.2f}{'' if cell.settled else ' (unsettled)'} |")
    lines += ["", "G@t: seed-mean windowed G at attempt t ± 95 % CI half-width (Student t over seeds). "
              "Until t = M the window is not full and G counts the missing attempts as failures (VPG's plots).", ""]
    return lines


def _q_scale_section(r: _Report) -> list[str]:
    """The Q-value scale of the chosen grasps (a divergence check)."""
    experiment_dir = r.experiment_dir
    lines: list[str] = []
    q_scale = q_value_scale(experiment_dir)
    lines += ["Q-value scale of the chosen grasps (a divergence check: with rewards 0/1 a regression Q stays within "
              "[0, 1 / (1 - gamma)], 10 at the seed's gamma 0.9; under the `bce` loss Q is the logit of the success "
              "probability, unbounded but moving slowly):", "",
              "| objects | method | median \\|Q\\| of the last 20 attempts, per seed | "
              "max \\|Q\\| |", "|---|---|---|---|"]
    for (m, n), q in sorted(q_scale.items(), key=lambda item: (item[0][1], list(METHODS).index(item[0][0]))):
        lines.append(f"| {n} | {m} | {', '.join(f'{v:.3g}' for v in q['last20_median'])} | {q['max']:.3g} |")
    lines.append("")
    r.compact["q_value_scale"] = [{"method": m, "objects": n, "max_abs_q": round(q["max"], 4),
                                 "last20_median_abs_q": [round(v, 4) for v in q["last20_median"]]}
                                for (m, n), q in q_scale.items()]
    return lines


def _acceleration_section(r: _Report) -> list[str]:
    """Acceleration ratios (seed Table I) and the Cs histograms (seed Fig. 6)."""
    out_dir, settings, summary, cells, methods, counts = r.out_dir, r.settings, r.summary, r.cells, r.methods, r.counts
    lines: list[str] = []
    if "vanilla" in methods and len(methods) > 1:
        r.figures["fig6"] = plots.cs_histograms(summary, methods, out_dir / "fig6_cs_histograms.png")
        lines += ["## Acceleration ratios (seed Table I) and Cs histograms (seed Fig. 6)", "",
                  ("With a shared G-bar, each method and vanilla are measured against the higher of their two "
                   "G-bars. " if settings.gbar == "shared" else "")
                  + "m = (Cs_vanilla - Cs_method) / Cs_method; '≥' marks a lower bound (vanilla never reached that "
                  "level within the run, so its Cs is taken as the run length); '—' means the method itself never "
                  "reached it.", "", "| objects | method | " + " | ".join(f"Cs({p})" for p in PERCENTS) + " |",
                  "|---|---|" + "---|" * len(PERCENTS)]
        for n in counts:
            for m in methods:
                if (m, n) not in summary["ratios"]:
                    continue
                row = summary["ratios"][(m, n)]
                cell_text = [("≥ " if row[p]["bound"] else "") + _fmt(row[p]["m"]) for p in PERCENTS]
                lines.append(f"| {n} | {m} | " + " | ".join(cell_text) + " |")
            if n in SEED_TABLE_I:
                lines.append(f"| {n} | *seed: ours* | " + " | ".join(f"*{v:.2f}*" for v in SEED_TABLE_I[n]) + " |")
        lines += ["", "Cs(p) in attempts (first attempt at which the seed-mean G reaches p % of G-bar):", "",
                  "| objects | method | own G-bar | Cs measured against G-bar | "
                  + " | ".join(f"Cs({p})" for p in PERCENTS) + " |", "|---|---|---|---|" + "---|" * len(PERCENTS)]
        for n in counts:
            for m in methods:
                cell = cells.get((m, n))
                if cell is not None:
                    lines.append(f"| {n} | {m} | {cell.gbar:.2f} | {cell.cs_reference:.2f} | "
                                 + " | ".join("n/r" if cell.cs[p] is None else str(cell.cs[p]) for p in PERCENTS)
                                 + " |")
        lines += ["", "![Fig. 6](fig6_cs_histograms.png)", ""]
    return lines


def _method_comparison_section(r: _Report) -> list[str]:
    """Every method's learning curve (seed Fig. 7)."""
    out_dir, profile, summary, methods = r.out_dir, r.profile, r.summary, r.methods
    lines: list[str] = []
    if len(methods) > 2 or any(m in methods for m in ("mog", "poi")):
        r.figures["fig7"] = plots.learning_curves(summary, methods, out_dir / "fig7_method_comparison.png",
                                                f"All methods, G with 95 % CI ({profile.name} profile)")
        lines += ["## Method comparison (seed Fig. 7)", "", "![Fig. 7](fig7_method_comparison.png)", ""]
    return lines


def _novel_objects_section(r: _Report) -> list[str]:
    """Greedy grasps on novel objects (seed Table II), when `novel` ran."""
    experiment_dir, out_dir = r.experiment_dir, r.out_dir
    lines: list[str] = []
    novel_path = experiment_dir / NOVEL_FILE
    if novel_path.is_file():
        novel = json.loads(novel_path.read_text())
        r.figures["novel"] = plots.novel_bars(novel, out_dir / "table2_novel_objects.png")
        nm = [m for m in (*METHODS, PRETRAINED_KEY) if m in novel["methods"]]
        lines += ["## Novel objects (seed Table II)", "",
                  f"{novel['num_novel']} unseen shapes per scene, {novel['rounds']} rounds x {novel['attempts']} "
                  f"greedy attempts, no learning; the final models of the learning runs with "
                  f"{novel['objects_trained_with']} objects (round r uses seed r mod S's model; run lengths above). "
                  "The seed's Table II is from the real UR3 with daily items after 500 training steps.", "",
                  "| round | " + " | ".join(nm) + " |", "|---|" + "---|" * len(nm)]
        for i in range(novel["rounds"]):
            lines.append(f"| {i + 1} | " + " | ".join(f"{novel['methods'][m]['rounds'][i]:.2f}" for m in nm) + " |")
        lines.append("| mean ± std | " + " | ".join(
            f"{novel['methods'][m]['mean']:.3f} ± {novel['methods'][m]['std']:.3f}" for m in nm) + " |")
        lines.append("| *seed (real UR3)* | " + " | ".join(
            f"*{SEED_TABLE_II[m][0]:.3f} ± {SEED_TABLE_II[m][1]:.3f}*" if m in SEED_TABLE_II else "—"
            for m in nm) + " |")
        if PRETRAINED_KEY in nm:
            lines += ["", f"`{PRETRAINED_KEY}`: the KL-pretrained Q_s alone, i.e. `ours` before any DQN update."]
        lines += ["", "![Table II](table2_novel_objects.png)", ""]
        r.compact["novel"] = {m: {"rounds": novel["methods"][m]["rounds"],
                                  "mean": round(novel["methods"][m]["mean"], 4),
                                  "std": round(novel["methods"][m]["std"], 4)} for m in nm}
    return lines
