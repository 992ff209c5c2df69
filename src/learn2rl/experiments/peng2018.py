"""Peng et al. 2018 (dynamics randomization): a recurrent policy trained over randomized physics
transfers to physics it never saw; one trained on the nominal physics does not.

"Sim-to-Real Transfer of Robotic Control with Dynamics Randomization" (ICRA 2018, arXiv
1710.06537) trains LSTM policies on a simulator whose masses, frictions, damping and control
gains are drawn afresh per episode, and shows they keep working on dynamics outside the training
simulator, where a policy trained on one fixed simulator fails. The CPU-scale analogue here uses
the library's domain randomization of any gymnax environment (``tasks/randomization.py``):

- ``rl2-dr``: RL^2 (GRU, PPO; one episode per trial, so the memory identifies the physics within
  the episode) trained on ``dr/cartpole``: gymnax CartPole with the pole half-length, the pole
  mass, the push force and the time step drawn per task (episodes of 200 steps);
- ``rl2-nominal``: the same learner and budget on the default physics only
  (``gymnax:CartPole-v1``, also 200 steps).

Both are evaluated on the same held-out tasks of ``dr/cartpole`` (test-split parameters: never a
training task of ``rl2-dr``). The report adds each policy's return along one parameter at a time
(the others at their defaults), the nominal physics included.

``learn2rl reproduce peng2018 [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.evaluation import evaluate
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned
from learn2rl.learners.rl2 import Config
from learn2rl.plots import figure, plot_intervals
from learn2rl.report import markdown_grid
from learn2rl.tasks import make

TASK = "dr/cartpole"
STEPS = 200  # max_steps_in_episode of both families
NOMINAL = f"gymnax:CartPole-v1[max_steps_in_episode={STEPS}]"
CONFIG = Config(
    task=TASK,
    num_episodes=1,
    algorithm="ppo",
    hidden_size=32,
    num_tasks=16,
    num_updates=800,
    updates_per_chunk=50,
    learning_rate=3e-3,
    final_learning_rate=3e-4,
    gamma=0.99,
    gae_lambda=0.95,
    entropy_coef=0.01,
    ppo_epochs=8,
)
QUICK_CONFIG = CONFIG.replace(num_updates=400, updates_per_chunk=25)
# One parameter at a time, the others at their defaults (0.5, 0.1, 10, 0.02): the report's sweep.
SWEEPS = {
    "length": (0.1, 0.25, 0.5, 1.0, 2.5),
    "masspole": (0.03, 0.1, 0.3, 1.0, 3.0),
    "force_mag": (2.0, 5.0, 10.0, 20.0),
    "tau": (0.01, 0.02, 0.04, 0.06),
}
SWEEP_TASKS = 100  # held-out tasks (initial states) per sweep point
SWEEP_SEED = 7
NAMES = ("rl2-dr", "rl2-nominal")


def _sweep_tasks():
    """The sweep's tasks as one batch: ``SWEEP_TASKS`` copies of the default physics per sweep
    point with that point's value set (derived fields recomputed), then the default physics."""
    family = make(TASK)
    nominal = make(NOMINAL).tasks(SWEEP_TASKS)
    batches = [
        family.replace_fields(nominal, **{field: value})
        for field, values in SWEEPS.items()
        for value in values
    ]
    batches.append(nominal)
    return family, jax.tree.map(lambda *leaves: jnp.concatenate(leaves), *batches)


def _sweep(outcome) -> dict:
    """Mean return of every trained policy at each sweep point: {name: {field: [per seed
    [per point]]}}, and on the default physics {name: {"nominal": [per seed]}}."""
    family, tasks = _sweep_tasks()
    key = jax.random.PRNGKey(SWEEP_SEED)
    out: dict = {}
    for name in NAMES:
        rows = out.setdefault(name, {})
        for learner, state in outcome.trained[name]:
            agent = learner.agent(state.params, name=name)
            result = evaluate(agent, family, tasks, 1, key)
            means = result.total_rewards.reshape(-1, SWEEP_TASKS).mean(axis=1)
            start = 0
            for field, values in SWEEPS.items():
                rows.setdefault(field, []).append(means[start : start + len(values)].tolist())
                start += len(values)
            rows.setdefault("nominal", []).append(float(means[start]))
    return out


def _text(values) -> str:
    mean, half = mean_and_interval(values)
    return f"{mean:.1f} ± {half:.1f}" if np.isfinite(half) else f"{mean:.1f}"


def _held_out(outcome) -> tuple[float, str]:
    diff, half = outcome.difference("rl2-dr", "rl2-nominal")
    dr, nominal = (_text(outcome.per_seed(name)) for name in NAMES)
    return diff, (
        f"rl2-dr - rl2-nominal = {diff:+.1f} ± {half:.1f} (rl2-dr {dr}, rl2-nominal {nominal})"
    )


def _nominal_ratio(outcome) -> tuple[float, str]:
    dr = np.asarray(outcome.analyses["sweep"]["rl2-dr"]["nominal"])
    nominal = np.asarray(outcome.analyses["sweep"]["rl2-nominal"]["nominal"])
    ratio = float(dr.mean() / nominal.mean())
    return ratio, (
        f"on the nominal physics: rl2-dr {_text(dr)}, rl2-nominal {_text(nominal)}, "
        f"ratio {ratio:.2f}"
    )


def _sections(outcome) -> list[str]:
    sweep = outcome.analyses["sweep"]
    lines = [
        "### Return along one parameter (the others at their defaults)",
        "",
        f"Mean return over {SWEEP_TASKS} episodes per point (200 at most), mean ± 95% t interval "
        "over training seeds.",
        "",
    ]
    for field, values in SWEEPS.items():
        rows = [
            [name] + [_text(np.asarray(sweep[name][field])[:, i]) for i in range(len(values))]
            for name in NAMES
        ]
        lines += [
            markdown_grid([field] + [f"{v:g}" for v in values], rows),
            "",
        ]
    return lines


def _draw(outcome, path: Path) -> None:
    sweep = outcome.analyses["sweep"]
    with figure(path, ncols=len(SWEEPS), size=(4.2 * len(SWEEPS), 3.6)) as axes:
        for ax, (field, values) in zip(axes, SWEEPS.items(), strict=True):
            means, bounds = {}, {}
            for name in NAMES:
                per_seed = np.asarray(sweep[name][field], np.float64)  # [seeds, points]
                stats = [mean_and_interval(per_seed[:, i]) for i in range(len(values))]
                mean = np.array([m for m, _ in stats])
                half = np.nan_to_num(np.array([h for _, h in stats]))
                means[name], bounds[name] = mean, (mean - half, mean + half)
            plot_intervals(ax, means, bounds, x=values, xlabel=field, ylabel="episode return")
            ax.set_xscale("log")
            ax.legend(fontsize=8)


SPEC = Experiment(
    id="peng2018",
    paper="Peng et al. 2018 (arXiv 1710.06537)",
    section="Sec. IV-V, dynamics randomization; CPU analogue on gymnax CartPole",
    title="Dynamics randomization: transfer to held-out physics (RL^2 on CartPole)",
    learned=(
        Learned("rl2-dr", "rl2", CONFIG, QUICK_CONFIG),
        Learned(
            "rl2-nominal",
            "rl2",
            CONFIG.replace(task=NOMINAL),
            QUICK_CONFIG.replace(task=NOMINAL),
        ),
    ),
    findings=(
        Finding(
            "Trained over randomized physics, the policy returns more on held-out physics than "
            "the policy trained on the nominal physics",
            _held_out,
            "difference > 0",
            lambda diff: diff > 0,
        ),
        Finding(
            "Randomization costs little on the nominal physics",
            _nominal_ratio,
            "rl2-dr / rl2-nominal >= 0.9",
            lambda ratio: ratio >= 0.9,
        ),
    ),
    intro=(
        "RL^2 (GRU-32, PPO, one 200-step episode per trial) trained on CartPole with the pole "
        "half-length ~ logU[0.1, 2.5], pole mass ~ logU[0.03, 3], push force ~ U[2, 20] and time "
        "step ~ U[0.01, 0.06] drawn per task (rl2-dr), and on the default physics only "
        "(rl2-nominal: 0.5, 0.1, 10, 0.02); both evaluated on held-out draws of the randomized "
        "physics, with the same training budget."
    ),
    task=TASK,
    num_test_tasks=1000,
    quick_test_tasks=300,
    seeds=3,
    quick_seeds=2,
    analyses=(Analysis("sweep", _sweep),),
    figures=(
        Figure(
            "sweep.png",
            "Return along each randomized parameter (others at their defaults; log x axis), "
            "mean and 95% t interval over training seeds.",
            _draw,
        ),
    ),
    sections=_sections,
    regret_plot=False,
)
