"""RL^2 Table 2 (Duan et al. 2016, arXiv 1611.02779, Sec. 3.2): random tabular MDPs.

Each task is a random MDP of ``mdp/tabular-10s5a`` (10 states, 5 actions, 10-step episodes from
state 0, mean rewards N(1, 1), unit reward noise, flat-Dirichlet transitions); a trial is ``n``
episodes on one MDP, n in {10, 25, 50, 75, 100}, one cell per n. Each cell reports the mean total
reward of a trial on the same held-out MDPs for Random, PSRL, optimistic PSRL, UCRL2, BEB,
epsilon-greedy, greedy (``learn2rl.baselines.mdp``) and RL^2, beside the paper's numbers, plus the
mean value of the optimal policy of each true MDP (an upper bound no agent can beat in expectation).

The classical columns use the priors of the code behind the paper's table
(``baselines.mdp.PAPER_CODE_PRIORS``: reward prior mean 0, an almost flat model for greedy,
eps-greedy and UCRL2). Beside them, PSRL, UCRL2, BEB and greedy run again with the family's own
prior (N(1, 1) mean rewards, Dirichlet(1) transitions; columns ``*-fp``), which makes them much
stronger. The free constants (epsilon, OPSRL's number of samples, UCRL2's confidence scale, BEB's
beta) are the values tuned per n and prior on training-split MDPs (``baselines.mdp.TUNED``,
docs/baselines.md). ``--quick`` runs n = 10 and 25 with shorter RL^2 training and fewer test MDPs.

``learn2rl reproduce duan2016-mdps [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

import jax
import numpy as np

from learn2rl import baselines, plots
from learn2rl.baselines import mdp
from learn2rl.experiments.common import ACTION_SELECTION_TASKS, rl2_action_selection
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned, Suite
from learn2rl.learners.rl2 import Config
from learn2rl.report import markdown_grid
from learn2rl.tasks.tabular_mdp import optimal_values

TASK = "mdp/tabular-10s5a"
COLUMNS = ["random", "psrl", "opsrl", "ucrl2", "beb", "eps-greedy", "greedy", "rl2"]
CLASSICAL = COLUMNS[1:-1]
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
OWN = tuple(f"{name}-fp" for name in FAMILY_PRIOR)


def rl2_config(num_episodes: int, quick: bool) -> Config:
    """RL^2 settings per n (docs/results/duan2016.md has the runs behind them).

    GRU-128, A2C with Monte-Carlo returns, the discount annealed upward over training: at a fixed
    0.9 (and 0.8) RL^2 stayed near the random policy for 700-800 updates of 128-256 trials, at 0.5
    it learned within-trial exploitation (~120 at n=10) and then plateaued. Annealing to 0.95 cost
    the n=25 run its last 200 updates (the policy's entropy rose and the return fell from 311 to
    291), so trials longer than 10 episodes stop at 0.8. Longer trials get fewer trials per
    update, so that one update costs about the same.

    For n <= 25 the policy and value heads are indexed by the state (``state_heads``), a decoder
    regresses the task's expected reward of each action in the current state from the recurrent
    state (``reward_decoder_coef=30``, ``reward_decoder_target="expected"``), and GAE's lambda is
    0.6: at n = 10 the heads and a decoder of the observed mean rewards lifted the 3,000-update
    agent from about 120 to 139.7 +- 1.1 over three seeds, the expected-reward target and lambda
    0.6 to 149.5 acting greedily (one seed; docs/learners/rl2.md). The cell's agent acts by
    sampling or greedily, whichever earns more on training MDPs (``rl2_action_selection``).
    n = 10 trains for 6,000 updates and n = 25 for 10,000 (the paper's most): at 3,000 the means
    over three seeds were 149.1 +- 1.4 (BEB 150.0) and 401.8 +- 6.8 (OPSRL 424.5); at 6,000,
    152.3 +- 0.8 (5 seeds) and 424.4 +- 3.7; n = 25 at 10,000, 427.6 +- 5.1
    (docs/results/duan2016.md).
    """
    updates, num_tasks = {10: (6000, 256), 25: (10000, 128)}.get(num_episodes, (600, 64))
    if quick:  # a quarter of 6,000 (n = 10 and 25) or of 600, in whole chunks of 50
        updates = max(min(updates, 6000) // 200 * 50, 150)
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
        gae_lambda=0.6 if num_episodes <= 25 else 1.0,
        entropy_coef=0.02,
        final_entropy_coef=0.0,
        state_heads=num_episodes <= 25,
        reward_decoder_coef=30.0 if num_episodes <= 25 else 0.0,
        reward_decoder_target="expected",
    )


def classical_agents(family, num_episodes: int) -> list:
    """Every classical column with the paper code's priors, then the ``-fp`` columns."""
    code, own = mdp.tuned_options(num_episodes, "paper-code"), mdp.tuned_options(num_episodes)
    agents = [baselines.get(name, family, num_episodes, **code[name]) for name in COLUMNS[:-1]]
    return agents + [
        baselines.get(name, family, num_episodes, **own[name])._replace(name=f"{name}-fp")
        for name in FAMILY_PRIOR
    ]


def _optimal(outcome) -> float:
    """n x the mean 10-step optimal value of each held-out MDP (backward induction on it)."""
    values = jax.vmap(optimal_values, (0, None))(outcome.tasks, outcome.family.episode_length)
    return outcome.num_episodes * float(np.mean(values))


def _findings(n: int) -> tuple[Finding, ...]:
    paper = dict(zip(COLUMNS, PAPER_TABLE2[n], strict=True))

    def random_policy(outcome):
        row = outcome.merged("random").summary()
        mean, half = row["mean_total_reward"], row["ci95"]
        return abs(mean - 10 * n) - half, f"{mean:.1f} ± {half:.1f}"

    def near_paper(outcome):
        gaps = {name: outcome.per_seed(name).mean() / paper[name] - 1 for name in CHECKED}
        text = ", ".join(f"{name} {gap:+.1%}" for name, gap in gaps.items())
        return max(abs(gap) for gap in gaps.values()), text

    def rl2_versus(names):
        def measure(outcome):
            best = max(names, key=lambda name: outcome.per_seed(name).mean())
            diff, half = outcome.difference("rl2", best)
            rl2, other = outcome.per_seed("rl2").mean(), outcome.per_seed(best).mean()
            text = f"RL^2 {rl2:.1f} - {best} {other:.1f} = {diff:+.1f} ± {half:.1f} (paired)"
            return diff + half, text

        return measure

    paper_best = max(paper[name] for name in CLASSICAL)
    reaches = "paired difference's 95% CI reaches 0 or above"
    return (
        Finding(f"n={n}: a random policy earns 10 n = {10 * n} (mean reward 1 per step)",
                random_policy, "10 n inside the 95% CI", lambda excess: excess <= 0),
        Finding(f"n={n}: PSRL, UCRL2, BEB, greedy within 5% of the paper", near_paper,
                f"relative gap within ±{RELATIVE_TOLERANCE:.0%} for each",
                lambda gap: gap <= RELATIVE_TOLERANCE),
        Finding(f"n={n}: RL^2 at least as good as the best classical baseline (paper: RL^2 "
                f"{paper['rl2']}, best baseline {paper_best})", rl2_versus(CLASSICAL), reaches,
                lambda high: high >= 0),
        Finding(f"n={n}: RL^2 at least as good as the baselines given the family's own prior "
                "(not in the paper)", rl2_versus(OWN), reaches, lambda high: high >= 0),
    )  # fmt: skip


def cell(n: int) -> Experiment:
    """The cell of n episodes per trial: RL^2 and every column on the same held-out MDPs."""
    return Experiment(
        id=f"n{n}",
        paper="Duan et al. 2016 (arXiv 1611.02779)",
        section=f"Table 2, n = {n}",
        title=f"RL^2 Table 2: random tabular MDPs, {n} episodes per trial",
        learned=(Learned("rl2", "rl2", rl2_config(n, False), rl2_config(n, True)),),
        agents=classical_agents,
        learned_agent=rl2_action_selection,
        analyses=(
            Analysis("optimal", _optimal),
            Analysis("options", lambda o: {p: mdp.tuned_options(n, p) for p in mdp.PRIOR_SETTINGS}),
        ),
        findings=_findings(n),
        reference=dict(zip(COLUMNS, PAPER_TABLE2[n], strict=True)),
        num_test_tasks=2000,
        quick_test_tasks=500,
        regret_plot=False,  # the family's pseudo-regret is myopic (tasks/tabular_mdp.py)
    )


def _ours(done: dict) -> dict[str, dict]:
    return {row["agent"]: row for row in done["results"]}


def _sections(cells: dict) -> list[str]:
    table, own, actions = [], [], []
    for cid, done in cells.items():
        ours, paper = _ours(done), PAPER_TABLE2[int(cid[1:])]
        means = {name: f"{row['mean_total_reward']:.1f}" for name, row in ours.items()}
        table.append([cid[1:], *(f"{means[c]} / {p}" for c, p in zip(COLUMNS, paper, strict=True)),
                      f"±{ours['rl2']['ci95']:.1f}", f"{done['analyses']['optimal']:.1f}",
                      f"{done['train_seconds']:.0f}"])  # fmt: skip
        own.append([cid[1:], *(means[c] for c in (*OWN, "rl2"))])
        actions.append(f"n = {cid[1:]}: " + _actions_note(done))
    header = ["n", *COLUMNS, "rl2 interval", "optimal", "rl2 train s"]
    return ["## Table 2: mean total reward of a trial, ours / paper", "",
            markdown_grid(header, table), "", "With the family's own prior (ours only):", "",
            markdown_grid(["n", *OWN, "rl2"], own), "",
            "RL^2's test-time actions per training seed (sampled from its policy or its most "
            "likely action, chosen by the mean total reward on "
            f"{ACTION_SELECTION_TASKS} training MDPs, shown as sampled / greedy):", "",
            *(f"- {line}" for line in actions), ""]  # fmt: skip


def _actions_note(done: dict) -> str:
    notes = done.get("agent_notes", {}).get("rl2")
    if not notes:
        return "sampled (no choice recorded)"
    return "; ".join(
        f"{n['actions']} ({n['scores']['sampled']:.1f} / {n['scores']['greedy']:.1f})"
        for n in notes
    )


def _plot_table(cells: dict, path) -> None:
    """Mean reward per episode against n: ours (solid), the paper's (dashed), ``-fp`` (dotted)."""
    by_n = {int(cid[1:]): done for cid, done in cells.items()}
    optimal = "optimal policy of the true MDP"
    curves = {optimal: [done["analyses"]["optimal"] / n for n, done in by_n.items()]}
    styles = {optimal: {"color": "k"}}
    for name in (*COLUMNS, *OWN):
        curves[name] = [_ours(done)[name]["mean_total_reward"] / n for n, done in by_n.items()]
        i = COLUMNS.index(name.removesuffix("-fp"))
        styles[name] = {"color": f"C{i}", "ls": ":" if name in OWN else "-"}
        if name in COLUMNS:
            curves[f"{name} (paper)"] = [PAPER_TABLE2[n][i] / n for n in by_n]
            styles[f"{name} (paper)"] = {"color": f"C{i}", "ls": "--"}
    with plots.figure(path, size=(9, 6)) as ax:
        title = "Random tabular MDPs: ours vs Duan et al. 2016 (dashed)"
        plots.plot_lines(ax, curves, list(by_n), "episodes per trial n",
                         "mean reward per episode (total / n)", title, styles=styles)  # fmt: skip
        ax.legend(fontsize=7, ncol=2)


SPEC = Suite(
    id="duan2016-mdps",
    paper="Duan et al. 2016 (arXiv 1611.02779)",
    section="Sec. 3.2, Table 2",
    title="RL^2 Table 2: random tabular MDPs",
    cells=lambda quick: [cell(n) for n in ([10, 25] if quick else PAPER_TABLE2)],
    intro="One cell per n episodes per trial; every agent of a cell faces the same MDPs and "
    "reward draws. The classical columns use the priors of the code behind the paper's table; "
    "the `-fp` columns run PSRL, UCRL2, BEB and greedy with the family's own prior. Constants: "
    "the values tuned per n and prior on training MDPs (`baselines.mdp.TUNED`). `optimal`: n x "
    "the mean 10-step optimal value of each true MDP, an upper bound for every agent. Each cell's "
    "results.json lists the constants it used (`analyses.options`).",
    sections=_sections,
    figures=(Figure("table2.png", "Reward per episode against n", _plot_table),),
    cell_findings=True,
)
