"""The main job: meta-train RL^2 on two-armed Bernoulli bandits (100 pulls), then compare it with
every classical bandit algorithm on the same held-out tasks.

Setting of Wang et al. 2016 (arXiv 1611.05763, Sec. 3.1.1: p ~ U[0,1], 100 pulls) and of RL^2's
Table 1
(Duan et al. 2016). The physical limit is the Bayes-optimal policy, 64.918 expected total reward
(exact dynamic programming over Beta(1,1) posteriors); the oracle that knows the better arm gets
66.667.
"""

from __future__ import annotations

from pathlib import Path

from learn2rl import baselines, checkpoint, runner
from learn2rl.experiments.common import baseline_agents, compare, paired_difference, write_outputs
from learn2rl.learners.rl2 import Config
from learn2rl.logging import read_metrics
from learn2rl.plots import plot_training
from learn2rl.report import config_text

DEMO_CONFIG = Config(
    task="bandit/independent-2arm",
    num_episodes=100,
    algorithm="a2c",
    cell="gru",
    hidden_size=48,
    num_tasks=256,
    num_updates=5000,
    updates_per_chunk=100,
    learning_rate=5e-3,
    final_learning_rate=5e-4,
    gamma=0.9,
    gae_lambda=1.0,
    entropy_coef=0.05,
    final_entropy_coef=0.0,
)
QUICK_CONFIG = DEMO_CONFIG.replace(num_updates=400)


def run(
    out: Path,
    quick: bool = False,
    num_test_tasks: int = 10_000,
    progress: bool = True,
    console=None,
    config: Config | None = None,
    resume: bool = False,
) -> list[dict]:
    config = config or (QUICK_CONFIG if quick else DEMO_CONFIG)
    if console is not None:
        console.print(
            f"[bold]learn2rl demo[/bold]: RL^2 ({config.cell.upper()}-{config.hidden_size}, "
            f"{config.algorithm.upper()}) on {config.task}, {config.num_episodes} pulls, "
            f"{config.num_updates} updates x {config.num_tasks} tasks -> {out}"
        )
    if not resume and checkpoint.exists(Path(out) / runner.CHECKPOINT_DIR):
        # Running the demo again continues (or just re-evaluates) the run already in --out.
        resume = True
        if console is not None:
            console.print(
                f"{out} already holds a demo run: continuing it (--out DIR for a new one)"
            )
    learner, state = runner.train(
        "rl2", config, out, resume=resume, progress=progress, console=console
    )
    plot_training(read_metrics(out / "metrics.jsonl"), out / "training.png")
    family = learner.family
    agents = [learner.agent(state.params, name="rl2")]
    agents += baseline_agents(family, config.num_episodes)
    results = compare(agents, family, config.num_episodes, num_test_tasks, console=console)
    by_name = {r.agent: r for r in results}
    sections = []
    if "bayes-optimal" in by_name:
        diff, half = paired_difference(by_name["rl2"], by_name["bayes-optimal"])
        text = (
            f"RL^2 minus Bayes-optimal, paired over the same {num_test_tasks} tasks and "
            f"reward draws: {diff:+.2f} ± {half:.2f} (95% CI)."
        )
        if baselines.bayes_optimal_method(family.num_arms, config.num_episodes) == "exact-dp":
            exact = baselines.bayes_optimal_value(family.num_arms, config.num_episodes)
            text += (
                f" Exact Bayes-optimal expected total reward (dynamic programming): {exact:.4f}."
            )
        sections.append(text)
    sections.append(
        "Training curve: ![training](training.png). Config: `" + config_text(config) + "`."
    )
    intro = (
        f"RL^2 meta-trained for {config.num_updates} updates of {config.num_tasks} trials, then "
        f"run on {num_test_tasks} held-out test tasks beside classical bandit algorithms with "
        "the same budget. Regret is pseudo-regret against the oracle that knows the best arm."
    )
    return write_outputs(
        out,
        results,
        f"RL^2 on {config.task}, {config.num_episodes} pulls",
        intro,
        sections,
        {"config": config.to_dict()},
        console=console,
    )
