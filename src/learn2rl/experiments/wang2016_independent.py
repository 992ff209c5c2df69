"""Wang et al. 2016 (arXiv 1611.05763), Sec. 3.1.1: independent two-armed Bernoulli bandits.

p_i ~ U[0, 1], 100 pulls per trial. The paper plots RL^2's cumulative regret across the trial beside
Gittins, Thompson sampling and UCB1 on the same held-out tasks, and finds RL^2's curve close to the
Gittins curve and below Thompson sampling's and UCB1's. Here the Bayes-optimal policy (exact dynamic
programming, 64.918 expected total reward; docs/baselines.md) stands beside the discounted Gittins
index policy (gamma 0.9) the paper used.

``learn2rl reproduce wang2016-independent [--quick] --out DIR``.
"""

from __future__ import annotations

from pathlib import Path

from learn2rl import baselines
from learn2rl.experiments.common import (
    baseline_agents,
    compare,
    finding,
    findings_section,
    paired_difference,
    train_rl2,
    write_outputs,
)
from learn2rl.experiments.demo import DEMO_CONFIG
from learn2rl.learners.rl2 import Config

CONFIG = DEMO_CONFIG  # Wang et al.'s setting is the demo's: 2 arms, 100 pulls, gamma 0.9, A2C
QUICK_CONFIG = DEMO_CONFIG.replace(num_updates=1500)
AGENTS = ["bayes-optimal", "gittins", "thompson", "ucb1", "greedy", "random", "oracle"]
TOLERANCE = 0.6  # how far below Bayes-optimal (total reward, paired) the full run may land


def run(
    out: Path,
    quick: bool = False,
    progress: bool = True,
    console=None,
    config: Config | None = None,
    num_test_tasks: int | None = None,
) -> dict:
    out = Path(out)
    config = config or (QUICK_CONFIG if quick else CONFIG)
    num_test_tasks = num_test_tasks or (2000 if quick else 5000)
    if console is not None:
        console.print(
            f"[bold]wang2016-independent[/bold]: RL^2 on {config.task}, {config.num_episodes} "
            f"pulls, {config.num_updates} updates x {config.num_tasks} tasks -> {out}"
        )
    learner, state = train_rl2(config, out / "rl2", progress, console)
    family = learner.family
    agents = [learner.agent(state.params, name="rl2")]
    agents += baseline_agents(family, config.num_episodes, AGENTS)
    results = compare(agents, family, config.num_episodes, num_test_tasks, console=console)
    by_name = {r.agent: r for r in results}
    rl2 = by_name["rl2"]

    def gap(other: str) -> tuple[float, float]:
        return paired_difference(rl2, by_name[other])

    findings = []
    for other in ("thompson", "ucb1"):
        diff, half = gap(other)
        findings.append(
            finding(
                f"RL^2 ends with less regret than {other}",
                f"RL^2 - {other} total reward {diff:+.2f} ± {half:.2f}",
                "difference > 0 (paired 95% CI above 0)",
                diff - half > 0,
            )
        )
    diff, half = gap("bayes-optimal")
    exact = baselines.bayes_optimal_value(2, config.num_episodes)
    findings.append(
        finding(
            "RL^2 is close to the Bayes-optimal (Gittins-like) curve",
            f"RL^2 - Bayes-optimal {diff:+.2f} ± {half:.2f} (exact optimum {exact:.3f})",
            f"difference > -{TOLERANCE}",
            diff > -TOLERANCE,
        )
    )
    early = rl2.regrets[:, :10].mean() * 10
    late = rl2.regrets[:, -10:].mean() * 10
    findings.append(
        finding(
            "RL^2's regret flattens as it learns within the trial",
            f"regret in pulls 1-10: {early:.2f}, in pulls 91-100: {late:.2f}",
            "late < early / 3",
            late < early / 3,
        )
    )
    intro = (
        f"Command: `learn2rl reproduce wang2016-independent{' --quick' if quick else ''}`. "
        f"RL^2 (GRU-{config.hidden_size}, A2C, gamma {config.gamma}) meta-trained for "
        f"{config.num_updates} updates of {config.num_tasks} trials, then run once on each of "
        f"{num_test_tasks} held-out test tasks (one seed) beside the classical algorithms, all on "
        "the same tasks and reward draws. Regret is pseudo-regret against the oracle. Gittins is "
        "the discounted index (gamma 0.9) Wang et al. plotted; Bayes-optimal is exact."
    )
    sections = [
        "## Findings (tested)",
        "",
        findings_section(findings),
        "",
        f"Quick runs train for {QUICK_CONFIG.num_updates} updates instead of "
        f"{CONFIG.num_updates} and may miss the Bayes-optimal tolerance."
        if quick
        else "",
    ]
    rows = write_outputs(
        out,
        results,
        "Wang et al. 2016: independent two-armed bandits, 100 pulls",
        intro,
        sections,
        {"config": config.to_dict(), "findings": findings, "quick": quick},
        console=console,
    )
    return {"rows": rows, "findings": findings}
