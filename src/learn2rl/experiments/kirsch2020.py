"""Kirsch et al. 2020 (MetaGenRL): a learned objective trains new agents on an unseen environment.

"Improving Generalization in Meta Reinforcement Learning using Learned Objectives" (ICLR 2020,
arXiv 1910.04098), Sec. 5.1 and Figure 3 / Table 1: an objective meta-trained by a population of
agents on environments A and B, then frozen, trains randomly initialised agents on an environment
C it never saw, with other observation and action sizes.

The CPU-scale split here: meta-train on ``control/point-goal`` (2 observations, 2 actions) and
gymnax ``Reacher-misc`` (8, 2); meta-test on gymnax ``Pendulum-v1`` (3, 1). Meta-test runs train a
fresh TD3-critic agent on C for ``TEST_STEPS`` steps whose policy follows

- ``metagenrl``: the meta-trained objective (restored and frozen; one run per meta-training seed x
  meta-test seed, as the paper's 6 x 2);
- ``random objective``: a randomly initialised frozen objective (the control);
- ``td3``, ``ddpg``: the critic's gradient (hand-designed, not meta-learned);
- ``reinforce``: off-policy REINFORCE with GAE (the paper's hand-designed objective baseline);
- ``ppo``: PPO on C with the same number of environment steps (RL^2's PPO learner on a
  one-environment family, one episode per trial);
- ``rl2``: RL^2 meta-trained on A and B (a task is which environment: ``tasks/mixture.py``),
  scored by its return in the last episode of a trial on C;
- ``epg``: a loss evolved by EPG (Houthooft et al. 2018, the paper's comparison row) with
  lifetimes on A and B, then frozen and training fresh Gaussian policies on C for the meta-test
  budget of environment steps (one lifetime per meta-training seed x meta-test seed), scored by
  the final policy's deterministic return.

The table's number is the final return (mean of the deterministic evaluation returns over the last
``FINAL_UPDATES`` updates of a run); intervals are t intervals over runs. The paper's own
population of 20, networks of 3 x 350 and batches of 100 sub-trajectories are ``PAPER_CONFIG``,
for an accelerator (docs/learners/metagenrl.md gives the command).
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.evaluation import EvalResult
from learn2rl.evaluation import evaluate as evaluate_agent
from learn2rl.experiments.common import EVAL_SEED, scores_result, train_learner
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned
from learn2rl.learners.epg import EPG
from learn2rl.learners.epg import Config as EPGConfig
from learn2rl.learners.objectives.metagenrl import Config as MetaConfig
from learn2rl.learners.offpolicy.td3 import Config as TD3Config
from learn2rl.learners.rl2 import Config as RL2Config
from learn2rl.logging import read_metrics
from learn2rl.plots import figure, plot_lines
from learn2rl.report import markdown_grid
from learn2rl.tasks import make
from learn2rl.tasks.adapters import make_env
from learn2rl.tasks.mixture import mixture_id

TRAIN_ENVS = ("control/point-goal", "Reacher-misc")
TEST_ENV = "Pendulum-v1"
TEST_SEEDS = 2  # meta-test seeds per meta-trained objective (the paper: 2)
FINAL_UPDATES = 3  # the final return: mean eval return of the last 3 updates
EVAL_KEY = jax.random.PRNGKey(EVAL_SEED)
PAPER_TABLE1 = {  # Table 1, Hopper, meta-trained on LunarLander & HalfCheetah (mean return)
    "metagenrl": 2791,
    "EPG": -36,
    "RL^2": 332,
    "PPO": 2378,
    "DDPG / TD3": 2146,
    "off-policy REINFORCE (GAE)": -55,
}

# Policy resets every 5k steps make the objective train policies from scratch during
# meta-training, what meta-testing asks of it (docs/results/kirsch2020.md, "The inner step").
CONFIG = MetaConfig(
    envs=TRAIN_ENVS,
    num_agents=4,
    num_updates=400,
    steps_per_update=500,
    policy_reset_steps=5000,
)
QUICK_CONFIG = CONFIG.replace(num_updates=16)
# The paper's population, networks, batch and schedule on the CPU-scale environments.
PAPER_CONFIG = MetaConfig(
    envs=TRAIN_ENVS,
    num_agents=20,
    hidden_sizes=(350, 350, 350),
    batch_size=100,
    random_steps=10_000,
    update_after=0,
    anneal_steps=10_000,
    buffer_size=1_000_000,
    num_updates=300,
    steps_per_update=1000,
)

TEST = TD3Config(
    env=TEST_ENV,
    num_updates=20,
    steps_per_update=1000,
    updates_per_chunk=5,
    hidden_sizes=CONFIG.hidden_sizes,
    layer_norm=True,
    policy_learning_rate=1e-3,
    critic_learning_rate=1e-3,
    batch_size=CONFIG.batch_size,
    sequence_length=CONFIG.sequence_length,
    max_grad_norm=1.0,
    random_steps=1000,
)
QUICK_TEST = TEST.replace(num_updates=12)

# RL^2 meta-trained on the same pair (a task = which environment; observations zero-padded, the
# largest action size), meta-tested on a trial of RL2_EPISODES episodes of the unseen environment.
RL2_EPISODES = 3
RL2 = RL2Config(
    task=mixture_id(TRAIN_ENVS, (TEST_ENV,)),
    num_episodes=RL2_EPISODES,
    algorithm="ppo",
    hidden_size=64,
    num_tasks=32,
    num_updates=300,
    updates_per_chunk=25,
    learning_rate=1e-3,
    final_learning_rate=1e-4,
    entropy_coef=0.0,
    gae_lambda=0.95,
)
QUICK_RL2 = RL2.replace(num_updates=100)
# EPG evolved on the same pair (a task = which environment, as RL^2's): lifetimes of 16 epochs x
# 200 steps (16 Pendulum-length episodes), otherwise the CPU-scale defaults of
# docs/learners/epg.md. At meta-test the frozen loss trains a fresh policy for the meta-test
# agents' budget of steps (its lifetime stretched to that many epochs; the time input spans it).
EPG_CONFIG = EPGConfig(
    task=mixture_id(TRAIN_ENVS, (TEST_ENV,)),
    num_updates=200,
    updates_per_chunk=10,
    steps_per_epoch=200,
    epochs=16,
    buffer_size=800,
    minibatch_size=40,
    fitness_episodes=1,
    validation_tasks=8,
)
QUICK_EPG = EPG_CONFIG.replace(num_updates=50)
EPG_EVAL_EPISODES = 5  # deterministic episodes scoring a policy, as the TD3 evaluations

# PPO on the meta-test environment itself, with the meta-test agents' budget of environment steps
# (RL^2's learner on a one-environment family, one episode per trial: recurrent PPO).
PPO_TASKS = 8


def _ppo_config(test: TD3Config, seed: int) -> RL2Config:
    steps = test.num_updates * test.steps_per_update
    episode = make_env(TEST_ENV).max_episode_steps
    return RL2.replace(
        task=mixture_id((TEST_ENV,), (TEST_ENV,)),
        num_episodes=1,
        num_tasks=PPO_TASKS,
        num_updates=max(1, steps // (PPO_TASKS * episode)),
        updates_per_chunk=1,
        seed=seed,
    )


# (row name, what differs from the meta-test agent's TD3 config)
BASELINES = {
    "random objective": {"policy_objective": "learned"},  # objective=random:<seed>
    "td3": {"policy_objective": "ddpg", "sequence_length": 1, "batch_size": 256},
    "ddpg": {"policy_objective": "ddpg", "algorithm": "ddpg", "sequence_length": 1,
             "batch_size": 256},
    "reinforce": {"policy_objective": "reinforce"},
}  # fmt: skip


def _test_config(outcome) -> TD3Config:
    quick = outcome.configs["metagenrl"].num_updates <= QUICK_CONFIG.num_updates
    return QUICK_TEST if quick else TEST


def _last_episode_returns(result: EvalResult, num_episodes: int) -> np.ndarray:
    """Each trial's return in its last episode (RL^2 has adapted by then)."""
    last = (result.episodes == num_episodes - 1) & result.valid
    return (result.rewards * last).sum(axis=1)


def _rl2_returns(learner, state, num_tasks: int) -> float:
    """The mean last-episode return of ``state``'s RL^2 agent on the unseen environment."""
    family = make(learner.config.task)
    agent = learner.agent(state.params, name="rl2")
    result = evaluate_agent(
        agent, family, family.tasks(num_tasks, "test"), learner.config.num_episodes, EVAL_KEY
    )
    return float(_last_episode_returns(result, learner.config.num_episodes).mean())


def _epg_returns(learner, state, test: TD3Config) -> list[float]:
    """EPG's meta-test: fresh policies trained on the unseen environment by ``state``'s frozen
    loss for the meta-test budget of steps (``TEST_SEEDS`` lifetimes, each its own draws), each
    scored by its mean deterministic return."""
    c = learner.config
    epochs = max(1, test.num_updates * test.steps_per_update // c.steps_per_epoch)
    tester = EPG(c.replace(epochs=epochs), family=learner.family)
    tasks = tester.family.tasks(TEST_SEEDS, "test")
    k_train, k_eval = jax.random.split(EVAL_KEY)
    out = tester.train_policies(state.params["loss"], tasks, k_train, 0.0)
    returns = tester.policy_returns(out["policy"], tasks, k_eval, EPG_EVAL_EPISODES)
    return [float(r) for r in np.asarray(returns)]


def _meta_test(name: str, config: TD3Config, where: Path) -> list[float]:
    """Train one fresh agent on the meta-test environment; its eval-return curve."""
    train_learner("td3", config, where, progress=False)
    return [row["eval_return"] for row in read_metrics(where / "metrics.jsonl")]


def _result(name: str, curves: list[list[float]]) -> EvalResult:
    """Final returns as an ``EvalResult`` (one row per run, one step holding the final return)."""
    return scores_result(name, TEST_ENV, [np.mean(c[-FINAL_UPDATES:]) for c in curves])


def evaluate(outcome, num_tasks: int) -> dict:
    """Meta-test: fresh agents on ``TEST_ENV`` trained by each objective, cached per run."""
    test = _test_config(outcome)
    meta_dirs = outcome.train_dirs["metagenrl"]
    base = meta_dirs[0].parents[1] / "meta-test"
    curves: dict[str, list[list[float]]] = {}
    for i, meta_dir in enumerate(meta_dirs):
        for j in range(TEST_SEEDS):
            config = test.replace(policy_objective="learned", objective=str(meta_dir), seed=j)
            run = base / "metagenrl" / f"meta-{i}-test-{j}"
            curves.setdefault("metagenrl", []).append(_meta_test("metagenrl", config, run))
    runs = len(meta_dirs) * TEST_SEEDS
    for name, changes in BASELINES.items():
        for j in range(runs):
            if name == "random objective":
                changes = {**changes, "objective": f"random:{j}"}
            config = test.replace(**changes, seed=j)
            run = base / name.replace(" ", "-") / f"seed-{j}"
            curves.setdefault(name, []).append(_meta_test(name, config, run))
    results = {name: [_result(name, c)] for name, c in curves.items()}
    rl2 = [_rl2_returns(lrn, st, num_tasks) for lrn, st in outcome.trained["rl2"]]
    results["rl2"] = [_result("rl2", [[r] for r in rl2])]
    ppo = []
    for j in range(runs):
        learner, state = train_learner(
            "rl2", _ppo_config(test, j), base / "ppo" / f"seed-{j}", progress=False
        )
        ppo.append([_rl2_returns(learner, state, num_tasks)])
    results["ppo"] = [_result("ppo", ppo)]
    epg = [r for lrn, st in outcome.trained.get("epg", []) for r in _epg_returns(lrn, st, test)]
    if epg:
        results["epg"] = [_result("epg", [[r] for r in epg])]
        outcome.analyses["epg_returns"] = epg
    outcome.analyses["curves"] = curves
    outcome.analyses["test_config"] = test.to_dict()
    return results


def _final(outcome, name: str) -> tuple[float, float]:
    return mean_and_interval(outcome.results[name][0].total_rewards)


def _apart(outcome, a: str, b: str) -> tuple[float, str]:
    (ma, ia), (mb, ib) = _final(outcome, a), _final(outcome, b)
    gap = (ma - ia) - (mb + ib)
    return gap, f"{a} {ma:.0f} ± {ia:.0f} vs {b} {mb:.0f} ± {ib:.0f}"


def _td3_ratio(outcome) -> tuple[float, str]:
    learned, _ = _final(outcome, "metagenrl")
    td3, _ = _final(outcome, "td3")
    floor, _ = _final(outcome, "random objective")
    score = (learned - floor) / (td3 - floor) if td3 != floor else float("nan")
    return score, (
        f"(metagenrl - random objective) / (td3 - random objective) = {score:.2f} "
        f"({learned:.0f} vs td3 {td3:.0f}, floor {floor:.0f})"
    )


def _value_gain(outcome) -> dict:
    """Mean logged ``value_gain`` (Q(s, pi_phi') - Q(s, pi_phi)) over each meta-training run's
    updates after learning started."""
    per_seed = []
    for where in outcome.train_dirs["metagenrl"]:
        rows = read_metrics(Path(where) / "metrics.jsonl")
        gains = [r["value_gain"] for r in rows if r.get("critic_loss", 0) != 0]
        per_seed.append(float(np.mean(gains)) if gains else float("nan"))
    return {"per_seed": per_seed}


def _draw_curves(outcome, path: Path) -> None:
    curves = outcome.analyses["curves"]
    steps = outcome.analyses["test_config"]["steps_per_update"]
    means = {n: np.mean(c, axis=0) for n, c in curves.items()}
    bands = {n: np.std(c, axis=0) for n, c in curves.items()}
    length = len(next(iter(means.values())))
    with figure(path, size=(6.5, 4)) as ax:
        plot_lines(
            ax,
            means,
            x=[steps * (u + 1) for u in range(length)],
            xlabel=f"environment steps on {TEST_ENV} (unseen in meta-training)",
            ylabel="deterministic return",
            title="Fresh agents on the unseen environment (mean ± sd over runs)",
            bands=bands,
        )


def _sections(outcome) -> list[str]:
    rows = [[name, f"{value}"] for name, value in PAPER_TABLE1.items()]
    gains = outcome.analyses["value_gain"]["per_seed"]
    epg = outcome.analyses.get("epg_returns", [])
    epg_line = (
        [f"EPG's meta-test returns, one per meta-training seed x meta-test seed: "
         f"{', '.join(f'{r:.1f}' for r in epg)}.", ""]
        if epg else []
    )  # fmt: skip
    return [
        "## The paper's Table 1 (Hopper, meta-trained on LunarLander and HalfCheetah)",
        "",
        markdown_grid(["agent", "final return (paper)"], rows),
        "",
        f"Mean policy-value gain Q(s, pi_phi') - Q(s, pi_phi) during meta-training, per seed: "
        f"{', '.join(f'{g:.2e}' for g in gains)}.",
        "",
        *epg_line,
    ]


SPEC = Experiment(
    id="kirsch2020",
    paper="Kirsch, van Steenkiste & Schmidhuber 2020 (ICLR; arXiv 1910.04098)",
    section="Sec. 5.1, Figure 3, Table 1",
    title="MetaGenRL: a learned objective trains agents on an environment it never saw",
    intro=(
        f"MetaGenRL's objective is meta-trained by {CONFIG.num_agents} agents on "
        f"{' and '.join(TRAIN_ENVS)}, then frozen and used to train fresh agents on {TEST_ENV}, "
        "beside TD3, DDPG, off-policy REINFORCE with GAE and a random frozen objective (same "
        "critic learning, same budget), PPO with that budget, and RL^2 meta-trained on the same "
        f"two environments (its return in the last of {RL2_EPISODES} episodes on {TEST_ENV}), "
        "and a loss evolved by EPG on the same two environments training fresh policies on "
        f"{TEST_ENV} with the same budget (the paper's comparison row). "
        "Rows are final returns, one per run; the paper's Table 1 is below for context."
    ),
    learned=(
        Learned("metagenrl", "metagenrl", CONFIG, QUICK_CONFIG),
        Learned("rl2", "rl2", RL2, QUICK_RL2),
        Learned("epg", "epg", EPG_CONFIG, QUICK_EPG),
    ),
    evaluate=evaluate,
    regret_plot=False,
    analyses=(Analysis("value_gain", _value_gain),),
    findings=(
        Finding(
            "The learned objective trains fresh agents on the unseen environment better than a "
            "random objective",
            lambda o: _apart(o, "metagenrl", "random objective"),
            "95% intervals apart (lower bound of metagenrl above the upper bound of the other)",
            lambda gap: gap > 0,
        ),
        Finding(
            "The learned objective trains agents on the unseen environment better than RL^2 "
            "meta-trained on the same environments",
            lambda o: _apart(o, "metagenrl", "rl2"),
            "95% intervals apart",
            lambda gap: gap > 0,
        ),
        Finding(
            "The learned objective trains agents on the unseen environment better than a loss "
            "evolved by EPG on the same environments",
            lambda o: _apart(o, "metagenrl", "epg"),
            "95% intervals apart",
            lambda gap: gap > 0,
        ),
        Finding(
            "The learned objective gets within reach of TD3 on the unseen environment",
            _td3_ratio,
            "normalised score >= 0.75",
            lambda score: score >= 0.75,
        ),
        Finding(
            "The objective's step improves the policy by the critic's measure during meta-training",
            lambda o: (
                float(np.mean(o.analyses["value_gain"]["per_seed"])),
                f"mean value gain {np.mean(o.analyses['value_gain']['per_seed']):.2e}",
            ),
            "> 0",
            lambda gain: gain > 0,
        ),
    ),
    figures=(
        Figure(
            "kirsch2020-meta-test.png",
            "Meta-test learning curves on the unseen environment",
            _draw_curves,
        ),
    ),
    sections=_sections,
    seeds=3,
    quick_seeds=1,
    num_test_tasks=100,  # RL^2's and PPO's evaluation trials on the unseen environment
    quick_test_tasks=100,
)
