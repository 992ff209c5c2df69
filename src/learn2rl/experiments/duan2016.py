"""RL^2 Table 1 (Duan et al. 2016, arXiv 1611.02779, Sec. 4.1): multi-armed bandits.

Bernoulli arms with p ~ U[0,1]; k in {5, 10, 50} arms; n in {10, 100, 500} pulls per trial (one pull
per episode). One cell per (n, k): mean total reward over held-out tasks for Random, Gittins (our
``bayes-optimal``: exact dynamic programming where the table fits, else the finite-horizon Gittins
approximation, see docs/baselines.md), Thompson sampling, UCB1 and epsilon-greedy (their c and
epsilon tuned on training-split tasks, as Duan et al. tuned them), greedy and RL^2, beside the
paper's numbers. The paper reports the best of 5 RL^2 seeds; the table shows our mean over seeds
with its interval and, labelled, our best seed. ``--quick`` runs n in {10, 100} with shorter RL^2
training.

``learn2rl reproduce duan2016-bandits [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

from learn2rl.experiments.spec import Experiment, Finding, Learned, Suite, Tuned
from learn2rl.learners.rl2 import Config
from learn2rl.report import markdown_grid

# Duan et al. 2016 Table 1 (mean total reward over 1000 tasks); columns in our baseline names.
PAPER_COLUMNS = ["random", "bayes-optimal", "thompson", "ucb1", "eps-greedy", "greedy", "rl2"]
PAPER_TABLE1 = {
    (10, 5): [5.0, 6.6, 5.7, 6.7, 6.6, 6.6, 6.7],
    (10, 10): [5.0, 6.6, 5.5, 6.7, 6.6, 6.6, 6.7],
    (10, 50): [5.1, 6.5, 5.2, 6.6, 6.5, 6.5, 6.8],
    (100, 5): [49.9, 78.3, 74.7, 78.0, 75.4, 74.8, 78.7],
    (100, 10): [49.9, 82.8, 76.7, 82.4, 77.4, 77.1, 83.5],
    (100, 50): [49.8, 85.2, 64.5, 84.3, 78.3, 78.0, 84.9],
    (500, 5): [249.8, 405.8, 402.0, 405.8, 388.2, 380.6, 401.6],
    (500, 10): [249.0, 437.8, 429.5, 437.1, 408.0, 395.0, 432.5],
    (500, 50): [249.6, 463.7, 427.2, 457.6, 413.6, 402.8, 438.9],
}
PAPER = {
    f"n{n}-k{k}": dict(zip(PAPER_COLUMNS, row, strict=True)) for (n, k), row in PAPER_TABLE1.items()
}
# Columns whose implementation matches the paper's (greedy and eps-greedy score an unpulled arm
# differently, docs/baselines.md): within 1.0 of the paper, or 0.5% of it for n = 500.
MATCHED = ("random", "bayes-optimal", "thompson", "ucb1")
RL2_TOLERANCE = 0.02  # RL^2's target: at most 2% below the paper's RL^2
# Duan et al. tuned UCB1's c and epsilon-greedy's epsilon per setting (their released code searches
# {0, 0.1, ..., 1}); ``Tuned`` does the same on training-split tasks only.
BASELINES = ("random", "bayes-optimal", "thompson", Tuned("ucb1", "exploration"),
             Tuned("eps-greedy", "epsilon"), "greedy")  # fmt: skip


def rl2_config(num_pulls: int, num_arms: int, quick: bool) -> Config:
    """RL^2 settings per table cell.

    Chosen from short runs (docs/learners/rl2.md). The entropy bonus is the setting that mattered:
    too much keeps a 50-armed policy uniform (n=10, k=50: RL^2 5.04 = random with 0.05, 6.53 with
    0; n=100, k=50: still random after 1700 updates with 0.02), too little lets long trials collapse
    early (n=100, k=5: 73.5 with 0.01, 76.7 with 0.05). With 50 arms the reward decoder
    (``reward_decoder_coef``: the recurrent state must hold each arm's mean so far) lifted n=10
    from 6.53 to 6.65 (3 seeds) and n=100 from 72.7 to about 81 (one seed); n=500 was not run with
    it. The agent still explored like the greedy agent (4.4 arms tried per trial at n=100, Gittins
    8.4; ``benchmarks/duan2016_bandit_diagnosis.py``); an index-shaped policy head
    (``index_head``: one shared rule scores every arm from its own features) took n=10 to 6.71
    (3 seeds; the exact optimum is 6.714) and n=100 to 82.82 +- 0.75 (3 seeds, 8,000 updates;
    83.2 is 2% below the paper). n=100, k=50 now trains for 16,000 updates (83.38 +- 0.37, 3 seeds).
    """
    hidden = 48 if num_arms <= 10 else 64
    if num_arms > 10:
        entropy = 0.0
    else:
        entropy = 0.01 if num_pulls <= 10 else 0.05
    num_tasks = 256 if num_pulls <= 100 else 128
    updates = {10: 3000, 100: 8000, 500: 4000}[num_pulls]
    if quick:
        updates = max(updates // 4, 300)
    elif (num_pulls, num_arms) == (100, 10):
        # GRU-48 plateaued at 81.3 from update ~4000 of 8000 (2% below the paper: 81.8);
        # GRU-96 for 12,000 updates reached 82.2 (1,628 s of training on a shared CPU).
        hidden, updates = 96, 12000
    elif (num_pulls, num_arms) == (100, 50):
        # With the index head, 8,000 updates gave 82.82 +- 0.75 over 3 seeds (83.2 is 2% below
        # the paper); 16,000 give 83.38 +- 0.37 over 3 seeds (docs/results/duan2016.md).
        updates = 16000
    return Config(
        task=f"bandit/independent-{num_arms}arm",
        num_episodes=num_pulls,
        hidden_size=hidden,
        num_tasks=num_tasks,
        num_updates=updates,
        updates_per_chunk=100,
        learning_rate=5e-3,
        final_learning_rate=5e-4,
        gamma=0.9,  # 0.97 never left the random policy (n=100, k=10; n=500, k=5)
        gae_lambda=1.0,
        entropy_coef=entropy,
        final_entropy_coef=0.0,
        reward_decoder_coef=10.0 if num_arms > 10 and num_pulls <= 100 else 0.0,
        index_head=16 if num_arms > 10 and num_pulls <= 100 else 0,
    )


def cell(num_pulls: int, num_arms: int) -> Experiment:
    """The (n, k) cell: RL^2 trained on k-armed bandits beside every column of Table 1."""
    return Experiment(
        id=f"n{num_pulls}-k{num_arms}",
        paper="Duan et al. 2016 (arXiv 1611.02779)",
        section=f"Table 1, n = {num_pulls}, k = {num_arms}",
        title=f"RL^2 Table 1: {num_arms}-armed bandits, {num_pulls} pulls",
        learned=(
            Learned("rl2", "rl2", *(rl2_config(num_pulls, num_arms, q) for q in (False, True))),
        ),
        baselines=BASELINES,
        intro="`bayes-optimal` stands in the paper's Gittins column (docs/baselines.md).",
        reference=PAPER[f"n{num_pulls}-k{num_arms}"],
    )


def _rows(done: dict) -> dict[str, dict]:
    return {row["agent"]: row for row in done["results"]}


def _classical(cells: dict) -> tuple[float, str]:
    """The largest excess of |ours - paper| over its allowance among the matched columns."""
    gaps = [
        (_rows(done)[name]["mean_total_reward"] - PAPER[cid][name], cid, name)
        for cid, done in cells.items()
        for name in MATCHED
    ]
    excess = [abs(gap) - max(1.0, 0.005 * PAPER[cid][name]) for gap, cid, name in gaps]
    gap, cid, name = max(gaps, key=lambda g: abs(g[0]))
    return max(excess), f"largest gap: {name} {gap:+.2f} at {cid}"


def _rl2_best(cells: dict) -> tuple[float, str]:
    """Cells where RL^2's best seed (the paper reports its best of 5) is > 2% below the paper."""
    best = {
        cid: _rows(done)["rl2"].get("best_seed", _rows(done)["rl2"]["mean_total_reward"])
        for cid, done in cells.items()
    }
    short = [cid for cid, v in best.items() if v < (1 - RL2_TOLERANCE) * PAPER[cid]["rl2"]]
    text = ", ".join(f"{cid} {best[cid]:.2f} vs {PAPER[cid]['rl2']}" for cid in short)
    return len(short), f"{len(best) - len(short)} of {len(best)} cells met; short: {text or '-'}"


def _table(cells: dict) -> list[str]:
    rows = []
    for cid, done in cells.items():
        ours, paper, rl2 = _rows(done), PAPER[cid], _rows(done)["rl2"]
        rows.append([cid, *(f"{ours[n]['mean_total_reward']:.2f} / {paper[n]}" for n in
                     PAPER_COLUMNS[:-1]), f"{rl2['mean_total_reward']:.2f} ± {rl2['ci95']:.2f}",
                     f"{rl2.get('best_seed', rl2['mean_total_reward']):.2f} (of {done['seeds']})",
                     paper["rl2"], f"{done['train_seconds']:.0f}",
                     ", ".join(f"{k}={v}" for k, v in done["tuned"].items())])  # fmt: skip
    header = ["cell", *PAPER_COLUMNS[:-1], "rl2 mean ± interval", "rl2 best seed",
              "paper rl2 (best of 5)", "train s", "tuned"]  # fmt: skip
    return ["## Table 1: mean total reward, ours / paper", "", markdown_grid(header, rows)]


SPEC = Suite(
    id="duan2016-bandits",
    paper="Duan et al. 2016 (arXiv 1611.02779)",
    section="Sec. 4.1, Table 1",
    title="RL^2 Table 1: multi-armed bandits",
    cells=lambda quick: [cell(n, k) for n, k in PAPER_TABLE1 if not (quick and n == 500)],
    findings=(
        Finding(
            "Random, Gittins (bayes-optimal), Thompson and tuned UCB1 reproduce the paper",
            _classical,
            "gap <= max(1.0, 0.5% of the paper) in every cell, either sign",
            lambda excess: excess <= 0,
        ),
        Finding(
            "RL^2 (best of our seeds, as the paper reports) is within 2% of the paper's RL^2",
            _rl2_best,
            "no cell more than 2% below",
            lambda short: short == 0,
        ),
    ),
    intro=(
        "One cell per (n pulls, k arms); each cell's held-out tasks and reward draws are shared by "
        "every agent. RL^2: mean over training seeds ± the t interval over seeds (over tasks with "
        "one seed), and our best seed, labelled, beside the paper's best of 5. UCB1 (Beta(1,1) "
        "pseudo-counts) and eps-greedy use c and epsilon tuned over {0, 0.1, ..., 1} on 1,000 "
        "training-split tasks."
    ),
    sections=_table,
)
