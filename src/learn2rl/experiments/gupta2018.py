"""Gupta, Eysenbach, Finn & Levine 2018 (unsupervised meta-RL, arXiv 1806.04640): meta-training
on tasks proposed without any reward (DIAYN skills) prepares an RL^2 agent for hand-designed tasks
it never saw.

"Unsupervised Meta-Learning for Reinforcement Learning" trains DIAYN on an environment without
reward, turns each skill into a task (reward: the frozen discriminator's log q(z | s') - log p(z)),
meta-trains on those tasks, and evaluates on hand-designed tasks (2-D navigation to goals among
them). It reports the ordering learning from scratch < meta-training on a random discriminator's
tasks <= on DIAYN's tasks <= on the hand-designed task distribution itself. The CPU analogue, every
row evaluated on the same held-out goals of ``control/point-goal`` with 5-step episodes and their
real reward (minus the distance to the goal), ``EPISODES`` episodes per trial:

- ``rl2-diayn``: RL^2 (GRU, A2C) meta-trained on the ``SkillRewardFamily`` of a DIAYN
  discriminator trained first, per training seed, on the same dynamics (kept in the seed's run
  directory, ``diayn/``, so a rerun reuses it);
- ``rl2-random-disc``: the same on the skills of an untrained discriminator of the same
  architecture (random initial weights; its rewards vary little and tell the skills apart
  by chance);
- ``rl2-goals``: the same on the hand-designed distribution, ``control/point-goal`` itself;
- ``scratch``: learning from scratch: an untrained Gaussian MLP policy that learns on each held-out
  task with a vanilla policy-gradient step after each episode of the trial (MAML's inner step,
  with no meta-training), its step size chosen on training-split tasks. It stands for "no
  meta-training" better than the untrained RL^2 network would: that network has no learning rule
  at all, while this is an RL algorithm given the same experience.

**Episode length and skills.** With velocity steps clipped to 0.1, ``EPISODE_LENGTH = 5`` steps
reach exactly the goal square [-0.5, 0.5]^2 from the origin, so DIAYN's skills end inside the
region the goals are drawn from (the report measures where they end); with 10 steps, 8 skills
ended 0.8-1.3 from the origin, outside it, in a trial run. The discriminator is hashed when its
skill family is built, before meta-training, and again from the trained learner's family and from
DIAYN's checkpoint afterwards: the finding says they are equal.

``learn2rl reproduce gupta2018 [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import numpy as np

from learn2rl import runner
from learn2rl.analysis.adaptation import batch_returns
from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.errors import Learn2RLError
from learn2rl.evaluation import evaluate
from learn2rl.experiments.common import EVAL_SEED, train_learner
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned
from learn2rl.learners import diayn, maml, rl2
from learn2rl.plots import figure, plot_intervals
from learn2rl.report import config_text, markdown_grid

EPISODE_LENGTH = 5  # 5 clipped steps of 0.1 reach exactly the goal square [-0.5, 0.5]^2
TASK = f"control/point-goal[episode_length={EPISODE_LENGTH}]"
EPISODES = 3  # episodes per trial, in training and evaluation
GOAL_RANGE = 0.5
DIAYN_CONFIG = diayn.Config(
    task=TASK, num_skills=8, hidden_sizes=(32, 32), discriminator_hidden_sizes=(32, 32),
    num_envs=32, num_updates=80, updates_per_chunk=40,
)  # fmt: skip
CONFIG = rl2.Config(
    task=TASK, num_episodes=EPISODES, algorithm="a2c", hidden_size=64, num_tasks=64,
    num_updates=6000, updates_per_chunk=250, gamma=0.9, gae_lambda=0.95, entropy_coef=0.0,
    init_std=0.5, learning_rate=2e-3, final_learning_rate=2e-4,
)  # fmt: skip
QUICK_CONFIG = CONFIG.replace(num_updates=2500)
# Learning from scratch: an untrained policy with a VPG step after every episode.
SCRATCH_CONFIG = maml.Config(task=TASK, hidden_sizes=(64, 64), episodes_per_step=1)
SCRATCH_STEP_SIZES = (0.01, 0.1, 1.0)
NUM_SELECTION_TASKS = 200  # training-split tasks the scratch step size is chosen on
FINAL_STATE_EPISODES = 50  # episodes per skill for the skills' final states
ROWS = ("scratch", "rl2-random-disc", "rl2-diayn", "rl2-goals")
DIAYN_DIR = "diayn"  # in the run directory of an rl2-diayn seed
SKILLS_FILE = "skills.json"  # the discriminator's hash, written before meta-training


# --- training ---------------------------------------------------------------------------------
def diayn_config(config: rl2.Config) -> diayn.Config:
    """DIAYN's config for one training seed of RL^2 (the same seed)."""
    return DIAYN_CONFIG.replace(seed=config.seed)


def skill_family(row: str, config: rl2.Config, where: Path, progress=True, console=None):
    """The skill family RL^2 of ``row`` meta-trains on: DIAYN's trained discriminator (trained,
    or reloaded, in ``where/diayn``) or an untrained one of the same architecture."""
    setting = diayn_config(config)
    if row == "rl2-diayn":
        learner, state = train_learner("diayn", setting, where / DIAYN_DIR, progress, console)
    else:  # the same network's initial weights, never trained
        learner = diayn.DIAYN(setting)
        state = learner.init(seed=setting.seed + 1000)
    return learner.skill_family(state.params)


def train(learner_id: str, config, where: Path, progress=True, console=None):
    """One (row, seed): ``rl2-goals`` as any run; the skill rows on their skill family, whose
    discriminator hash is written to ``where/skills.json`` before meta-training starts (a rerun
    whose family hashes otherwise is an error, not a silent mix of two task distributions)."""
    where = Path(where)
    row = where.parent.name
    if row not in ("rl2-diayn", "rl2-random-disc"):
        return train_learner(learner_id, config, where, progress, console)
    family = skill_family(row, config, where, progress, console)
    digest = family.discriminator_hash()
    record = where / SKILLS_FILE
    if record.exists():
        before = json.loads(record.read_text())["discriminator_hash"]
        if before != digest:
            raise Learn2RLError(
                f"{where} was meta-trained on skills of another discriminator ({before}, now "
                f"{digest}); remove the run directory to train again"
            )
    else:
        where.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"discriminator_hash": digest}, indent=2) + "\n")
    learner = rl2.RL2(config, family=family)
    return train_learner(learner_id, config, where, progress, console, learner=learner)


# --- learning from scratch --------------------------------------------------------------------
@functools.lru_cache(maxsize=4)
def scratch_agent(family, num_episodes: int):
    """The untrained policy with a VPG step after each episode, its step size the best of
    ``SCRATCH_STEP_SIZES`` by mean total reward on training-split tasks (a key of its own).
    Kept per (family, episodes): the agent row and the report's analysis share one choice."""
    learner = maml.MAML(SCRATCH_CONFIG, family)
    params = learner.init().params
    tasks = family.tasks(NUM_SELECTION_TASKS, "train")
    key = jax.random.PRNGKey(EVAL_SEED + 1)
    scores = {}
    for step_size in SCRATCH_STEP_SIZES:
        agent = learner.agent(params, name="scratch", step_size=step_size, step_decay=1.0)
        scores[step_size] = float(
            evaluate(agent, family, tasks, num_episodes, key).total_rewards.mean()
        )
    best = max(scores, key=scores.get)
    return [learner.agent(params, name="scratch", step_size=best, step_decay=1.0)], scores


def _agents(family, num_episodes: int):
    agents, _ = scratch_agent(family, num_episodes)
    return agents


# --- analyses ---------------------------------------------------------------------------------
def _discriminators(outcome) -> dict:
    """Per skill row and seed: the discriminator's hash written before meta-training, the hash of
    the trained learner's family after it and (DIAYN) of the discriminator in DIAYN's checkpoint;
    for DIAYN also where its skills end (``FINAL_STATE_EPISODES`` sampled episodes per skill)."""
    out: dict = {}
    goals = np.asarray(outcome.tasks.goal, np.float64)
    for row in ("rl2-diayn", "rl2-random-disc"):
        seeds = []
        for where, (learner, _) in zip(outcome.train_dirs[row], outcome.trained[row], strict=True):
            before = json.loads((where / SKILLS_FILE).read_text())["discriminator_hash"]
            entry = {"before": before, "after": learner.family.discriminator_hash()}
            if row == "rl2-diayn":
                ckpt = where / DIAYN_DIR / runner.CHECKPOINT_DIR
                skills, state, meta = runner.load_learner(ckpt, "diayn")
                entry["checkpoint"] = skills.skill_family(state.params).discriminator_hash()
                finals = np.asarray(
                    skills.final_states(
                        state.params, jax.random.PRNGKey(EVAL_SEED), FINAL_STATE_EPISODES
                    ),
                    np.float64,
                )
                means = finals.mean(axis=1)
                nearest = np.linalg.norm(goals[:, None] - means[None], axis=-1).min(axis=1)
                entry |= {
                    "final_state_means": means.tolist(),
                    "final_states": finals[:, :10].tolist(),  # 10 per skill for the figure
                    "in_goal_region": float(np.mean(np.all(np.abs(finals) <= GOAL_RANGE, -1))),
                    "goal_to_nearest_skill": float(nearest.mean()),
                    "goal_to_nearest_skill_max": float(nearest.max()),
                    "train_seconds": float(meta.get("train_seconds", 0.0)),
                }
            entry["unchanged"] = len({v for k, v in entry.items() if k in HASHES}) == 1
            seeds.append(entry)
        out[row] = seeds
    return out


HASHES = ("before", "after", "checkpoint")


def _episodes(outcome) -> dict:
    """Mean return of each episode of the trial: {row: [per seed [per episode]]}."""
    return {
        name: [batch_returns(r, 1, outcome.num_episodes).mean(axis=0).tolist() for r in runs]
        for name, runs in outcome.results.items()
    }


def _scratch(outcome) -> dict:
    """The scratch step sizes tried on training-split tasks and the one chosen."""
    _, scores = scratch_agent(outcome.family, outcome.num_episodes)
    return {
        "scores": {f"{k:g}": v for k, v in scores.items()},
        "chosen": max(scores, key=scores.get),
    }


# --- findings ---------------------------------------------------------------------------------
def _text(values) -> str:
    mean, half = mean_and_interval(values)
    return f"{mean:.3f} ± {half:.3f}" if np.isfinite(half) else f"{mean:.3f}"


def _order(better: str, worse: str):
    def measure(outcome) -> tuple[float, str]:
        diff, half = outcome.difference(better, worse)
        return diff, (
            f"{better} - {worse} = {diff:+.3f} ± {half:.3f} ({better} "
            f"{_text(outcome.per_seed(better))}, {worse} {_text(outcome.per_seed(worse))})"
        )

    return measure


def _frozen(outcome) -> tuple[float, str]:
    entries = [e for seeds in outcome.analyses["discriminators"].values() for e in seeds]
    changed = sum(not e["unchanged"] for e in entries)
    return changed, (
        f"{len(entries) - changed} of {len(entries)} skill families (DIAYN and random, every "
        "seed) hash the same before and after meta-training"
    )


FINDINGS = (
    Finding(
        "Learning from scratch < RL^2 meta-trained on a random discriminator's tasks",
        _order("rl2-random-disc", "scratch"),
        "difference > 0",
        lambda diff: diff > 0,
    ),
    Finding(
        "RL^2 on a random discriminator's tasks <= RL^2 on DIAYN's tasks",
        _order("rl2-diayn", "rl2-random-disc"),
        "difference >= 0",
        lambda diff: diff >= 0,
    ),
    Finding(
        "RL^2 on DIAYN's tasks <= RL^2 on the hand-designed goal distribution",
        _order("rl2-goals", "rl2-diayn"),
        "difference >= 0",
        lambda diff: diff >= 0,
    ),
    Finding(
        "The discriminator is unchanged by meta-training",
        _frozen,
        "every hash equal",
        lambda changed: changed == 0,
    ),
)


# --- report -----------------------------------------------------------------------------------
def _sections(outcome) -> list[str]:
    episodes = outcome.analyses["episodes"]
    n = outcome.num_episodes
    rows = [
        [name, *(_text(np.asarray(episodes[name])[:, k]) for k in range(n))]
        for name in ROWS
        if name in episodes
    ]
    lines = [
        "### Return per episode of the trial",
        "",
        "Mean episode return on the held-out goals (minus the distance to the goal, summed over "
        f"{EPISODE_LENGTH} steps), mean ± 95% t interval over training seeds (scratch: one "
        "untrained policy).",
        "",
        markdown_grid(["agent", *(f"episode {k + 1}" for k in range(n))], rows),
        "",
    ]
    diayn_seeds = outcome.analyses["discriminators"]["rl2-diayn"]
    skill_rows = [
        [
            str(s),
            f"{e['in_goal_region']:.2f}",
            f"{e['goal_to_nearest_skill']:.3f} (max {e['goal_to_nearest_skill_max']:.3f})",
            ", ".join(f"{np.linalg.norm(m):.2f}" for m in e["final_state_means"]),
            f"{e['train_seconds']:.0f}",
        ]
        for s, e in enumerate(diayn_seeds)
    ]
    scratch = outcome.analyses["scratch"]
    tried = ", ".join(f"{k}: {v:.3f}" for k, v in scratch["scores"].items())
    lines += [
        "### DIAYN's skills over the goal region",
        "",
        f"Where each seed's {DIAYN_CONFIG.num_skills} skills end ({FINAL_STATE_EPISODES} "
        f"sampled episodes each), against the goal square [-{GOAL_RANGE}, {GOAL_RANGE}]^2.",
        "",
        markdown_grid(
            [
                "seed",
                "final states in the goal square",
                "test goal to nearest skill's mean final state",
                "skills' distances from the start",
                "DIAYN training (s)",
            ],
            skill_rows,
        ),  # fmt: skip
        "",
        f"Scratch's step size, chosen on {NUM_SELECTION_TASKS} training-split tasks (mean total "
        f"reward per step size: {tried}): {scratch['chosen']:g}.",
        "",
        f"Config of DIAYN (per seed, the seed of the RL^2 run): `{config_text(DIAYN_CONFIG)}`.",
        "",
    ]
    return lines


def _draw(outcome, path: Path) -> None:
    diayn_seeds = outcome.analyses["discriminators"]["rl2-diayn"]
    episodes = outcome.analyses["episodes"]
    with figure(path, ncols=2, size=(11, 4.4)) as (left, right):
        goals = np.asarray(outcome.tasks.goal)
        left.scatter(goals[:, 0], goals[:, 1], s=3, color="0.8", label="held-out goals")
        r = GOAL_RANGE
        left.plot([-r, r, r, -r, -r], [-r, -r, r, r, -r], color="k", lw=1)
        finals = np.asarray(diayn_seeds[0]["final_states"])  # [skills, 10, 2]
        for z, points in enumerate(finals):
            left.scatter(points[:, 0], points[:, 1], s=10, label=f"skill {z}")
        left.set(aspect="equal", title="DIAYN (seed 0): skills' final states", xlabel="x",
                 ylabel="y")  # fmt: skip
        left.legend(fontsize=6, loc="upper right", ncol=2)
        means, bounds = {}, {}
        for name in ROWS:
            per_seed = np.asarray(episodes[name], np.float64)  # [seeds, episodes]
            stats = [mean_and_interval(per_seed[:, k]) for k in range(per_seed.shape[1])]
            mean = np.array([m for m, _ in stats])
            half = np.nan_to_num(np.array([h for _, h in stats]))
            means[name], bounds[name] = mean, (mean - half, mean + half)
        plot_intervals(right, means, bounds, x=list(range(1, outcome.num_episodes + 1)),
                       xlabel="episode of the trial", ylabel="episode return",
                       title="held-out goals", dodge=0.2)  # fmt: skip
        right.legend(fontsize=8)


SPEC = Experiment(
    id="gupta2018",
    paper="Gupta, Eysenbach, Finn & Levine 2018 (arXiv 1806.04640)",
    section="Sec. 5, unsupervised meta-RL on 2-D navigation; CPU analogue with RL^2",
    title="Unsupervised meta-RL: RL^2 on DIAYN's skills vs random skills, goals and scratch",
    learned=(
        Learned("rl2-diayn", "rl2", CONFIG, QUICK_CONFIG),
        Learned("rl2-random-disc", "rl2", CONFIG, QUICK_CONFIG),
        Learned("rl2-goals", "rl2", CONFIG, QUICK_CONFIG),
    ),
    findings=FINDINGS,
    intro=(
        f"RL^2 (GRU-64, A2C, trials of {EPISODES} episodes of {EPISODE_LENGTH} steps) "
        "meta-trained, with the same budget, on the skills of a DIAYN discriminator "
        f"({DIAYN_CONFIG.num_skills} skills trained on the point's dynamics without reward; "
        "rl2-diayn), on the skills of an untrained discriminator (rl2-random-disc) and on the "
        "hand-designed goal distribution (rl2-goals); scratch is an untrained policy learning "
        "with a policy-gradient step after each episode. Every agent is evaluated on held-out "
        f"goals in [-{GOAL_RANGE}, {GOAL_RANGE}]^2 with their real reward."
    ),
    task=TASK,
    num_test_tasks=1000,
    quick_test_tasks=500,
    seeds=3,
    quick_seeds=2,
    num_episodes=EPISODES,
    agents=_agents,
    analyses=(
        Analysis("discriminators", _discriminators),
        Analysis("episodes", _episodes),
        Analysis("scratch", _scratch),
    ),
    figures=(
        Figure(
            "skills.png",
            "Left: where DIAYN's skills end (seed 0, 10 sampled episodes per skill) over the goal "
            "square and the held-out goals; right: mean return of each episode of the trial on "
            "the held-out goals, 95% t interval over training seeds",
            _draw,
        ),
    ),
    sections=_sections,
    regret_plot=False,
    train=train,
)
