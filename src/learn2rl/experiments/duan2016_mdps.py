"""RL^2 Table 2 (Duan et al. 2016, arXiv 1611.02779, Sec. 3.2): random tabular MDPs.

Each task is a random MDP of ``mdp/tabular-10s5a`` (10 states, 5 actions, 10-step episodes from
state 0, mean rewards N(1, 1), unit reward noise, flat-Dirichlet transitions); a trial is ``n``
episodes on one MDP, n in {10, 25, 50, 75, 100}. For each n we report the mean total reward of a
trial on the same held-out MDPs for Random, PSRL, optimistic PSRL, UCRL2, BEB, epsilon-greedy,
greedy (``learn2rl.baselines.mdp``) and RL^2, beside the paper's numbers, plus the mean value of
the optimal policy of each true MDP (an upper bound no agent can beat in expectation).

The classical columns use the priors of the code behind the paper's table
(``baselines.mdp.PAPER_CODE_PRIORS``: reward prior mean 0, an almost flat model for greedy,
eps-greedy and UCRL2). Beside them, PSRL, UCRL2, BEB and greedy run again with the family's own
prior (N(1, 1) mean rewards, Dirichlet(1) transitions; columns ``*-fp``), which makes them much
stronger. The free constants (epsilon, OPSRL's number of samples, UCRL2's confidence scale, BEB's
beta) are the values tuned per n and prior on training-split MDPs (``baselines.mdp.TUNED``,
docs/baselines.md). ``--quick`` runs n = 10 and 25 with shorter RL^2 training and fewer test MDPs.
Finished cells are cached in ``nN/cell.json``.

``learn2rl reproduce duan2016-mdps [--quick] --out DIR``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import numpy as np

from learn2rl import baselines, checkpoint, runner
from learn2rl.baselines import mdp
from learn2rl.evaluation import ci95
from learn2rl.experiments.common import (
    cached_cell,
    compare,
    finding,
    findings_section,
    paired_difference,
    save_cell,
)
from learn2rl.learners.rl2 import Config
from learn2rl.logging import read_metrics
from learn2rl.plots import plot_training
from learn2rl.report import config_text, machine_line, write_results_json
from learn2rl.tasks import make
from learn2rl.tasks.tabular_mdp import optimal_values

TASK = "mdp/tabular-10s5a"
COLUMNS = ["random", "psrl", "opsrl", "ucrl2", "beb", "eps-greedy", "greedy", "rl2"]
# Duan et al. 2016, Table 2 (mean total reward of a trial), in the order of COLUMNS.
PAPER_TABLE2 = {
    10: [100.1, 138.1, 144.1, 146.6, 150.2, 132.8, 134.8, 156.2],
    25: [250.2, 408.8, 425.2, 424.1, 427.8, 377.3, 368.8, 445.7],
    50: [499.7, 904.4, 930.7, 918.9, 917.8, 823.3, 769.3, 936.1],
    75: [749.9, 1417.1, 1449.2, 1427.6, 1422.6, 1293.9, 1172.9, 1428.8],
    100: [999.4, 1939.5, 1973.9, 1942.1, 1935.1, 1778.2, 1578.5, 1913.7],
}
# Target: these columns within 5% of the paper (or the gap explained).
CHECKED = ("psrl", "ucrl2", "beb", "greedy")
RELATIVE_TOLERANCE = 0.05
# Run again with the family's own prior (the "fp" columns).
FAMILY_PRIOR = ("psrl", "ucrl2", "beb", "greedy")
PROTOCOL = "mdps-v1"  # bump when what a cell computes changes; cached cells are then redone


def rl2_config(num_episodes: int, quick: bool) -> Config:
    """RL^2 settings per n (docs/results/duan2016.md has the runs behind them).

    GRU-128, A2C with Monte-Carlo returns, the discount annealed upward over training: at a fixed
    0.9 (and 0.8) RL^2 stayed near the random policy for 700-800 updates of 128-256 trials, at 0.5
    it learned within-trial exploitation (~120 at n=10) and then plateaued. Annealing to 0.95 cost
    the n=25 run its last 200 updates (the policy's entropy rose and the return fell from 311 to
    291), so trials longer than 10 episodes stop at 0.8. Longer trials get fewer trials per
    update, so that one update costs about the same.
    """
    updates, num_tasks = {10: (3000, 256), 25: (3000, 128)}.get(num_episodes, (600, 64))
    if quick:
        updates = max(updates // 200 * 50, 150)  # a quarter, in whole chunks of 50
    return Config(
        task=TASK,
        num_episodes=num_episodes,
        hidden_size=128,
        num_tasks=num_tasks,
        num_updates=updates,
        updates_per_chunk=100 if updates % 100 == 0 else 50,
        learning_rate=2e-3,
        final_learning_rate=2e-4,
        gamma=0.5,
        final_gamma=0.95 if num_episodes <= 10 else 0.8,
        gae_lambda=1.0,
        entropy_coef=0.02,
        final_entropy_coef=0.0,
    )


def run(
    out: Path,
    quick: bool = False,
    progress: bool = True,
    console=None,
    num_test_tasks: int | None = None,
    cells: list[int] | None = None,
    configs: dict[int, Config] | None = None,
) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    num_test_tasks = num_test_tasks or (500 if quick else 2000)
    cells = cells or ([10, 25] if quick else list(PAPER_TABLE2))
    table = []
    for n in cells:
        config = (configs or {}).get(n) or rl2_config(n, quick)
        table.append(_run_cell(out, n, config, num_test_tasks, progress, console))
        (out / "table2.json").write_text(json.dumps(table, indent=2))
    findings = _findings(table)
    rows = [row for entry in table for row in entry["rows"]]
    write_results_json(rows, out / "results.json", {"table2": table, "findings": findings})
    plot_table(table, out / "table2.png")
    report = _report(table, findings, num_test_tasks, quick)
    (out / "report.md").write_text(report)
    if console is not None:
        console.print(report)
    return {"table": table, "findings": findings}


def _run_cell(out, num_episodes, config, num_test_tasks, progress, console) -> dict:
    """Train RL^2, tune and evaluate every column for one n (cached in ``nN/cell.json``)."""
    cell_dir = out / f"n{num_episodes}"
    done_file = cell_dir / "cell.json"
    done = cached_cell(done_file, config, num_test_tasks, PROTOCOL)
    if done is not None:
        if console is not None:
            console.print(f"n={num_episodes}: done before, kept ({done_file})")
        return done["entry"]
    if console is not None:
        console.print(
            f"[bold]n={num_episodes}[/bold]: RL^2 {config.num_updates} updates x "
            f"{config.num_tasks} trials"
        )
    tic = time.perf_counter()
    resume = checkpoint.exists(cell_dir / runner.CHECKPOINT_DIR)
    learner, state = runner.train(
        "rl2", config, cell_dir, resume=resume, progress=progress, console=console
    )
    train_seconds = checkpoint.load_meta(cell_dir / runner.CHECKPOINT_DIR).get("train_seconds")
    plot_training(read_metrics(cell_dir / "metrics.jsonl"), cell_dir / "training.png")
    family = make(config.task)
    code, own = mdp.tuned_options(num_episodes, "paper-code"), mdp.tuned_options(num_episodes)
    agents = [baselines.get(name, family, num_episodes, **code[name]) for name in COLUMNS[:-1]]
    agents.append(learner.agent(state.params, name="rl2"))
    for name in FAMILY_PRIOR:
        agent = baselines.get(name, family, num_episodes, **own[name])
        agents.append(agent._replace(name=f"{name}-fp"))
    results = compare(agents, family, num_episodes, num_test_tasks, console=console)
    tasks = family.tasks(num_test_tasks, "test")
    optimum = num_episodes * np.asarray(
        jax.vmap(optimal_values, (0, None))(tasks, family.episode_length)
    )
    by_name = {r.agent: r for r in results}
    entry = {
        "n": num_episodes,
        "config": config.to_dict(),
        "seconds": time.perf_counter() - tic,
        "train_seconds": train_seconds,
        "options": {"paper-code": code, "family": own},
        "ours": {name: float(r.total_rewards.mean()) for name, r in by_name.items()},
        "ci95": {name: ci95(r.total_rewards) for name, r in by_name.items()},
        "paper": dict(zip(COLUMNS, PAPER_TABLE2[num_episodes], strict=True)),
        "optimal": float(optimum.mean()),
        "rl2_minus": {
            name: list(paired_difference(by_name["rl2"], r)) for name, r in by_name.items()
        },
        "rows": [dict(r.summary(), num_episodes=num_episodes) for r in results],
    }
    save_cell(done_file, config, num_test_tasks, PROTOCOL, entry=entry)
    return entry


def best_baseline(entry: dict, names=None) -> str:
    """The classical column (of ``names``, default the paper's) with the best mean in a cell."""
    names = names or [n for n in COLUMNS if n not in ("rl2", "random")]
    return max(names, key=lambda n: entry["ours"][n])


def _findings(table: list[dict]) -> list[dict]:
    findings = []
    for entry in table:
        n, ours, half = entry["n"], entry["ours"], entry["ci95"]
        findings.append(
            finding(
                f"n={n}: a random policy earns 10 n = {10 * n} (mean reward 1 per step)",
                f"{ours['random']:.1f} ± {half['random']:.1f}",
                "10 n inside the 95% CI",
                abs(ours["random"] - 10 * n) <= half["random"],
            )
        )
        gaps = {name: ours[name] / entry["paper"][name] - 1 for name in CHECKED}
        findings.append(
            finding(
                f"n={n}: PSRL, UCRL2, BEB, greedy within 5% of the paper",
                ", ".join(f"{name} {gap:+.1%}" for name, gap in gaps.items()),
                f"|relative gap| <= {RELATIVE_TOLERANCE:.0%} for each",
                all(abs(gap) <= RELATIVE_TOLERANCE for gap in gaps.values()),
            )
        )
        best = best_baseline(entry)
        paper_best = max(entry["paper"][c] for c in COLUMNS if c not in ("rl2", "random"))
        diff, diff_half = entry["rl2_minus"][best]
        findings.append(
            finding(
                f"n={n}: RL^2 at least as good as the best classical baseline (paper: RL^2 "
                f"{entry['paper']['rl2']}, best baseline {paper_best})",
                f"RL^2 {ours['rl2']:.1f} - {best} {ours[best]:.1f} = {diff:+.1f} ± {diff_half:.1f} "
                "(paired)",
                "paired difference's 95% CI reaches 0 or above",
                diff + diff_half >= 0,
            )
        )
        own = best_baseline(entry, [f"{name}-fp" for name in FAMILY_PRIOR])
        diff, diff_half = entry["rl2_minus"][own]
        findings.append(
            finding(
                f"n={n}: RL^2 at least as good as the baselines given the family's own prior "
                "(not in the paper)",
                f"RL^2 {ours['rl2']:.1f} - {own} {ours[own]:.1f} = {diff:+.1f} ± {diff_half:.1f} "
                "(paired)",
                "paired difference's 95% CI reaches 0 or above",
                diff + diff_half >= 0,
            )
        )
    return findings


def plot_table(table: list[dict], path: Path) -> Path:
    """Mean reward per episode against n: ours (solid) and the paper's (dashed), per column."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    ns = [entry["n"] for entry in table]
    for i, name in enumerate(COLUMNS):
        color = f"C{i}"
        ours = [entry["ours"][name] / entry["n"] for entry in table]
        paper = [entry["paper"][name] / entry["n"] for entry in table]
        ax.plot(ns, ours, "o-", color=color, label=name)
        ax.plot(ns, paper, "x--", color=color, alpha=0.6)
    for name in FAMILY_PRIOR:
        color = f"C{COLUMNS.index(name)}"
        ours = [entry["ours"][f"{name}-fp"] / entry["n"] for entry in table]
        ax.plot(ns, ours, "s:", color=color, alpha=0.8, label=f"{name}-fp (family prior)")
    optimum = [entry["optimal"] / entry["n"] for entry in table]
    ax.plot(ns, optimum, "k-", lw=2, label="optimal policy of the true MDP")
    ax.set_xlabel("episodes per trial n")
    ax.set_ylabel("mean reward per episode (total / n)")
    ax.set_title("Random tabular MDPs: ours (solid, dotted) vs Duan et al. 2016 (dashed)", size=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _report(table: list[dict], findings: list[dict], num_test_tasks: int, quick: bool) -> str:
    command = "learn2rl reproduce duan2016-mdps" + (" --quick" if quick else "")
    lines = [
        "# RL^2 Table 2: random tabular MDPs" + (" (quick)" if quick else ""),
        "",
        f"Command: `{command}`. Mean total reward of a trial on {num_test_tasks} held-out MDPs, "
        "ours / paper (Duan et al. 2016); every agent faces the same MDPs and the same evaluation "
        "key. The classical columns use the priors of the code behind the paper's table; the "
        "`-fp` columns run PSRL, UCRL2, BEB and greedy with the family's own prior instead. "
        "Constants: the values tuned per n and prior on training MDPs (`baselines.mdp.TUNED`). "
        "`optimal`: the mean of n x the 10-step optimal value of each true MDP, an upper bound "
        "for every agent.",
        "",
        "| n | " + " | ".join(COLUMNS) + " | optimal |",
        "|" + "---|" * (len(COLUMNS) + 2),
    ]
    for entry in table:
        cells = [f"{entry['ours'][c]:.1f} / {entry['paper'][c]}" for c in COLUMNS]
        lines.append(f"| {entry['n']} | " + " | ".join(cells) + f" | {entry['optimal']:.1f} |")
    own = [f"{name}-fp" for name in FAMILY_PRIOR]
    lines += ["", "With the family's own prior (ours only):", ""]
    lines += ["| n | " + " | ".join(own) + " | rl2 |", "|" + "---|" * (len(own) + 2)]
    for entry in table:
        cells = [f"{entry['ours'][c]:.1f}" for c in own + ["rl2"]]
        lines.append(f"| {entry['n']} | " + " | ".join(cells) + " |")
    lines += ["", "Constants used (option=value per baseline):", ""]
    for entry in table:
        for prior, options in entry["options"].items():
            tuned = "; ".join(
                f"{name} " + ", ".join(f"{k}={v}" for k, v in opts.items())
                for name, opts in options.items()
                if opts
            )
            lines.append(f"- n={entry['n']}, {prior} priors: {tuned or 'defaults'}")
    lines += [
        "",
        "95% CI half-widths of our numbers (largest column): "
        + "; ".join(f"n={e['n']}: ±{max(e['ci95'].values()):.1f}" for e in table),
        "",
        "RL^2 training and cell times: "
        + "; ".join(
            f"n={e['n']}: train {e['train_seconds'] or 0:.0f} s, cell {e['seconds']:.0f} s"
            for e in table
        ),
        "",
        "![Table 2](table2.png)",
        "",
        "## Findings (tested)",
        "",
        findings_section(findings),
        "",
        "RL^2 configs: "
        + "; ".join(f"n={e['n']}: `{config_text(Config.from_dict(e['config']))}`" for e in table),
        "",
        machine_line(),
        "",
    ]
    return "\n".join(lines)
