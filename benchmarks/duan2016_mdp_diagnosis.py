"""Why RL^2 falls short on random tabular MDPs (RL^2 Table 2): three measurements.

    python benchmarks/duan2016_mdp_diagnosis.py \
        --checkpoint runs/duan-mdps/n10/rl2/seed-0/checkpoint
    python benchmarks/duan2016_mdp_diagnosis.py --states 1 3 10 --updates 1000 \
        --set final_gamma=none --set entropy_coef=0.05 --set learning_rate=1e-3

Our RL^2 reaches about 120 at n = 10 (10 episodes of 10 steps) where Duan et al. report 156.2 and
the classical baselines score 135-155 (docs/results/duan2016.md). This script measures where the
gap is, on the same held-out tasks for every agent (n = 10 throughout):

1. ``--checkpoint DIR``: a trained RL^2 agent with its state observations shown, and the same
   agent with every state observation replaced by zeros (previous action, reward, done flag and
   step index still given). If the two are close, the agent does not use the state: it repeats
   action sequences that paid in earlier episodes, indexed by the step of the episode. For an
   agent with state-indexed heads (``state_heads``), zeros everywhere also blank the heads (the
   policy becomes uniform), so a third row hides the state from the recurrent core only
   (``blind_core``): the heads still read the current state, but the memory cannot tell in which
   state a reward was earned. Each agent is scored sampling its policy and acting greedily.
2. ``--states S ...``: RL^2 trained from scratch with the settings of the n = 10 cell
   (``duan2016_mdps.rl2_config``, ``--updates`` updates) on the same family with S states instead
   of 10. With one state the family is a 5-armed Gaussian bandit.
3. Beside each S: the random policy and a *myopic* agent, which ignores transitions altogether:
   in each state it takes the action with the highest posterior-mean reward (Normal prior with
   mean ``--myopic-prior`` and standard deviation 1, known noise 1, updated after every step; ties
   at random). A prior mean above the family's 1 makes it try untried actions first.

The "share" column is (agent - random) / (myopic - random): the part of the myopic agent's gain
over random that RL^2 reaches.
"""

from __future__ import annotations

import argparse
import sys
import time

from learn2rl.devices import use_cpu_cores

use_cpu_cores()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from learn2rl import runner  # noqa: E402
from learn2rl.baselines import mdp  # noqa: E402
from learn2rl.baselines.bandits import argmax_random_ties  # noqa: E402
from learn2rl.evaluation import ci95  # noqa: E402
from learn2rl.experiments.common import compare  # noqa: E402
from learn2rl.experiments.duan2016_mdps import rl2_config  # noqa: E402
from learn2rl.learners.base import parse_overrides  # noqa: E402
from learn2rl.learners.rl2 import RL2, Config  # noqa: E402
from learn2rl.report import machine_line  # noqa: E402
from learn2rl.tasks.tabular_mdp import TabularMDP  # noqa: E402
from learn2rl.types import Agent  # noqa: E402

NUM_EPISODES = 10


def myopic_agent(family: TabularMDP, prior_mean: float) -> Agent:
    """Per state, the action of highest posterior-mean reward; transitions are ignored."""
    prior = mdp.make_prior(prior_mean, 1.0, 1.0)
    horizon = family.episode_length

    def init(key, task_params=None):
        return mdp.initial_stats(family.num_states, family.num_actions), jnp.int32(0)

    def act(key, agent_state, trial_obs):
        stats, prev_state = agent_state
        state = jnp.argmax(trial_obs.obs).astype(jnp.int32)
        new_episode = jnp.asarray(trial_obs.step, jnp.int32) % horizon == 0
        stats = mdp.update_stats(stats, prev_state, state, trial_obs, new_episode)
        mean, _ = mdp.reward_posterior(stats, prior)
        return argmax_random_ties(key, mean[state]), (stats, state)

    return Agent(name=f"myopic (prior {prior_mean:g})", init=init, act=act)


def without_states(agent: Agent) -> Agent:
    """The same agent with every state observation replaced by zeros."""

    def act(key, agent_state, trial_obs):
        return agent.act(key, agent_state, trial_obs.replace(obs=jnp.zeros_like(trial_obs.obs)))

    return Agent(name=agent.name + ", states hidden", init=agent.init, act=act)


def score(agent: Agent, family, num_tasks: int) -> tuple[float, float]:
    """Mean total reward on the first ``num_tasks`` held-out tasks with the experiments'
    evaluation key (``common.compare``), and its 95% half-width."""
    (result,) = compare([agent], family, NUM_EPISODES, num_tasks)
    return float(np.mean(result.total_rewards)), ci95(result.total_rewards)


def row(name: str, value: tuple[float, float], random: float | None, myopic: float | None):
    share = ""
    if random is not None and myopic is not None and myopic > random:
        share = f"{(value[0] - random) / (myopic - random):.0%}"
    print(f"| {name} | {value[0]:.1f} ± {value[1]:.1f} | {share} |", flush=True)


def check_checkpoint(directory: str, num_tasks: int) -> None:
    """The agent of ``directory`` with and without its state observations, sampled and greedy.

    The last column is the part of the agent's gain over random that hiding the state costs."""
    learner, state, _ = runner.load_learner(directory, "rl2")
    if learner.config.num_episodes != NUM_EPISODES:
        sys.exit(f"{directory}: trained for {learner.config.num_episodes} episodes, not 10")
    random, _ = score(mdp.random_agent(learner.family, NUM_EPISODES), learner.family, num_tasks)
    print(f"\nRL^2 checkpoint {directory}, {num_tasks} held-out tasks, n = {NUM_EPISODES}; "
          f"random {random:.1f}\n")  # fmt: skip
    print("| agent | total reward | share of the gain over random lost |\n|---|---|---|")
    blind = learner.network.clone(blind_core=True)
    for greedy in (False, True):
        mode = "greedy" if greedy else "sampled"
        agent = learner.agent(state.params, greedy=greedy, name=f"RL^2 {mode}")
        shown = score(agent, learner.family, num_tasks)
        row(agent.name, shown, None, None)
        hidden = [without_states(agent)]
        if learner.config.state_heads:
            core = learner.agent(state.params, greedy, f"RL^2 {mode}, states hidden from the core",
                                 network=blind)  # fmt: skip
            hidden.insert(0, core)
        for candidate in hidden:
            value = score(candidate, learner.family, num_tasks)
            lost = (shown[0] - value[0]) / (shown[0] - random) if shown[0] > random else np.nan
            line = f"| {candidate.name} | {value[0]:.1f} ± {value[1]:.1f} | {lost:.0%} |"
            print(line, flush=True)


def by_states(
    states: list[int], updates: int, prior: float, num_tasks: int, overrides: dict
) -> None:
    changed = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "none"
    print(
        f"\nRL^2 ({updates} updates, the n = 10 cell's settings, changed: {changed}) by number of "
        f"states; {num_tasks} held-out tasks, n = {NUM_EPISODES}\n"
    )
    print("| states, agent | total reward | share of myopic gain |\n|---|---|---|")
    config = rl2_config(NUM_EPISODES, quick=False).replace(num_updates=updates, **overrides)
    config = config.replace(updates_per_chunk=50 if updates % 50 == 0 else updates)
    for num_states in states:
        family = TabularMDP(num_states=num_states)
        random = score(mdp.random_agent(family, NUM_EPISODES), family, num_tasks)
        myopic_reference = myopic_agent(family, prior)
        myopic = score(myopic_reference, family, num_tasks)
        tic = time.perf_counter()
        learner = RL2(config, family)
        state = learner.init()
        for _ in range(updates // config.updates_per_chunk):
            state, _ = learner.train_chunk(state, config.updates_per_chunk)
        jax.block_until_ready(state.params)
        seconds = time.perf_counter() - tic
        agent = learner.agent(state.params)
        row(f"S={num_states}, random", random, None, None)
        row(f"S={num_states}, {myopic_reference.name}", myopic, random[0], myopic[0])
        row(
            f"S={num_states}, RL^2 ({seconds:.0f} s)",
            score(agent, family, num_tasks),
            random[0],
            myopic[0],
        )
        row(
            f"S={num_states}, RL^2, states hidden",
            score(without_states(agent), family, num_tasks),
            random[0],
            myopic[0],
        )


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="an RL^2 checkpoint trained with n = 10")
    parser.add_argument("--states", type=int, nargs="*", default=[], help="numbers of states")
    parser.add_argument("--updates", type=int, default=600, help="RL^2 updates per S")
    parser.add_argument("--myopic-prior", type=float, default=1.5, help="myopic prior mean")
    parser.add_argument("--tasks", type=int, default=2000, help="held-out tasks per agent")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="change an RL^2 setting of the --states runs (repeatable)",
    )
    args = parser.parse_args(argv)
    if not args.checkpoint and not args.states:
        parser.error("give --checkpoint DIR and/or --states S ...")
    if any(s <= 0 for s in args.states) or args.updates <= 0 or args.tasks <= 1:
        parser.error("--states, --updates must be positive and --tasks at least 2")
    if args.checkpoint:
        check_checkpoint(args.checkpoint, args.tasks)
    if args.states:
        overrides = parse_overrides(Config, args.set)
        by_states(args.states, args.updates, args.myopic_prior, args.tasks, overrides)
    print("\n" + machine_line())


if __name__ == "__main__":
    main()
