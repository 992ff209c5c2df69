"""Xu, van Hasselt & Silver 2018 (meta-gradient RL): an actor-critic tunes its own gamma, lambda.

"Meta-Gradient Reinforcement Learning" (NeurIPS 2018, arXiv 1805.09801), Sec. 4 (Atari
experiments) and Table 1 (the ablation with and without the eta embedding). The paper runs IMPALA
on 57 Atari games for 200M frames; the CPU-scale analogue here is one game of MinAtar (Young &
Tian 2019, gymnax's ``Breakout-MinAtar`` and ``Freeway-MinAtar``) plus two bsuite environments,
each a cell:

- ``breakout``: Breakout-MinAtar, the paper's setting in miniature: meta-gradients started at
  ``gamma = 0.9`` (with and without the embedding) against the fixed-``gamma`` agents at 0.9 and
  at 0.99 (IMPALA's default), the same number of environment steps;
- ``freeway``: Freeway-MinAtar, the same rows on a game whose reward (a crossing of the road)
  comes many steps after the moves that earn it, so that a longer horizon than 0.9's pays within
  the CPU budget (on Breakout at 1M steps it does not: fixed 0.99 scores below fixed 0.9);
- ``catch``: bsuite Catch (reward at the end of 9-step episodes), the learner's default task;
- ``chain``: bsuite DiscountingChain with the 10-step arm paying 1.1 and the others 1 (the arm is
  the best one only for ``gamma > 0.9895``): a probe of whether the meta-gradient finds the long
  horizon on its own.

Every row is one ``metagradient`` config, trained per seed; the table's number is the mean return
of ``EVAL_EPISODES`` fresh episodes of the final policy (sampled actions), one value per seed, with
t intervals over seeds. The findings test the paper's claims on both MinAtar games; the bsuite
cells report what happens. Paper scale (IMPALA, Atari) is beyond this library's environments; the
accelerator command in docs/learners/metagradient.md runs the Breakout cell at 10x the steps.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.experiments.common import EVAL_SEED, scores_result
from learn2rl.experiments.spec import Experiment, Figure, Finding, Learned, Suite
from learn2rl.learners.metagradient import Config, eta_values
from learn2rl.logging import read_metrics
from learn2rl.plots import figure, plot_lines
from learn2rl.report import markdown_grid

EVAL_EPISODES = 100  # fresh episodes of each final policy
INITIAL_GAMMA = 0.9  # the paper's meta-gradient experiments start gamma below the usual 0.99
CURVE_POINTS = 20  # training curves: mean episode return over this many windows of updates

# (cell id, environment, extra config, updates of a full run, updates of a quick run)
CELLS = (
    ("breakout", "Breakout-MinAtar", {}, 3000, 600),
    ("freeway", "Freeway-MinAtar", {}, 3000, 600),
    ("catch", "Catch-bsuite", {}, 300, 150),
    ("chain", "DiscountingChain-bsuite", {"chain_arm": 2}, 600, 200),
)
# Row name -> what differs from the meta-gradient agent started at gamma = 0.9.
VARIANTS = {
    "meta-gradient": {},
    "meta-gradient, no embedding": {"eta_embedding": False},
    # Not in the paper: J' bootstraps from a value head of its own, trained on the reference
    # return (Bonnet et al. 2022), instead of the inner critic trained for the current gamma.
    "meta-gradient, outer critic": {"outer_critic": True},
    "fixed gamma 0.9": {"meta_gradient": False},
    "fixed gamma 0.99": {"meta_gradient": False, "initial_gamma": 0.99},
}
FINDING_CELLS = ("breakout", "freeway")  # the MinAtar games, where the paper's claims are tested
META_ROWS = ("meta-gradient", "meta-gradient, no embedding", "meta-gradient, outer critic")
BASE = Config(
    initial_gamma=INITIAL_GAMMA,
    meta_learning_rate=0.01,  # 1e-3 moves gamma by < 0.01 in 1,500 Breakout updates
    updates_per_chunk=100,
)


def _config(env: str, extra: dict, updates: int, variant: dict) -> Config:
    return BASE.replace(env=env, num_updates=updates, **extra, **variant)


def evaluate(outcome, num_tasks: int) -> dict:
    """Each trained seed's final policy on ``num_tasks`` fresh episodes: one result per seed."""
    key = jax.random.PRNGKey(EVAL_SEED)
    results, etas, curves = {}, {}, {}
    for name, runs in outcome.trained.items():
        results[name], etas[name], curves[name] = [], [], []
        for (learner, state), where in zip(runs, outcome.train_dirs[name], strict=True):
            returns = np.asarray(learner.episode_returns(state.params, num_tasks, key))
            results[name].append(scores_result(name, learner.config.env, returns))
            gamma, lambda_ = (float(v) for v in eta_values(state.eta_logits))
            etas[name].append({"gamma": gamma, "lambda": lambda_})
            curves[name].append(_curve(Path(where) / "metrics.jsonl", learner.steps_per_update))
    outcome.analyses["final_eta"] = etas
    outcome.analyses["curves"] = curves
    return results


def _curve(metrics: Path, steps_per_update: int) -> dict[str, list[float]]:
    """Training return (mean over each of ``CURVE_POINTS`` windows of updates) and gamma (at
    each window's end)."""
    rows = read_metrics(metrics)
    windows = np.array_split(np.arange(len(rows)), min(CURVE_POINTS, len(rows)))
    return {
        "env_steps": [float(rows[w[-1]]["update"] * steps_per_update) for w in windows],
        "episode_return": [float(np.mean([rows[i]["episode_return"] for i in w])) for w in windows],
        "gamma": [float(rows[w[-1]]["gamma"]) for w in windows],
    }


def _gamma_rise(outcome, name: str) -> tuple[float, str]:
    gammas = [e["gamma"] for e in outcome.analyses["final_eta"][name]]
    text = ", ".join(f"{g:.3f}" for g in gammas)
    return min(gammas) - INITIAL_GAMMA, f"final gamma per seed of {name}: {text} (start 0.9)"


def _beats(outcome, a: str, b: str) -> tuple[float, str]:
    diff, half = outcome.difference(a, b)
    if outcome.num_seeds > 1:
        (ma, ia), (mb, ib) = (mean_and_interval(outcome.per_seed(n)) for n in (a, b))
        scores = f"{a} {ma:.2f} ± {ia:.2f} vs {b} {mb:.2f} ± {ib:.2f}"
    else:  # one seed: the interval is over the evaluation episodes
        scores = f"{a} {outcome.per_seed(a)[0]:.2f} vs {b} {outcome.per_seed(b)[0]:.2f} (1 seed)"
    return diff - half, f"{scores}; difference {diff:.2f} ± {half:.2f}"


def _findings() -> tuple[Finding, ...]:
    rises = tuple(
        Finding(
            f"Started at gamma = 0.9, the meta-gradient raises gamma ({name})",
            lambda o, n=name: _gamma_rise(o, n),
            "final gamma above 0.9 in every seed",
            lambda rise: rise > 0,
        )
        for name in META_ROWS
    )
    beats = tuple(
        Finding(
            f"The {name} agent beats the fixed gamma = 0.9 agent (same steps)",
            lambda o, n=name: _beats(o, n, "fixed gamma 0.9"),
            "difference in final return, 95% interval above 0 (over seeds; over episodes with "
            "one seed)",
            lambda low: low > 0,
        )
        for name in META_ROWS
    )
    return rises + beats


def _draw(outcome, path: Path) -> None:
    curves = outcome.analyses["curves"]
    x = next(iter(curves.values()))[0]["env_steps"]
    with figure(path, ncols=2, size=(11, 4)) as (left, right):
        for ax, key, label in (
            (left, "episode_return", "training episode return"),
            (right, "gamma", "gamma"),
        ):
            means = {n: np.mean([c[key] for c in cs], axis=0) for n, cs in curves.items()}
            bands = {n: np.std([c[key] for c in cs], axis=0) for n, cs in curves.items()}
            plot_lines(ax, means, x=x, xlabel="environment steps", ylabel=label, bands=bands)


def _sections(outcome) -> list[str]:
    rows = []
    for name, etas in outcome.analyses["final_eta"].items():
        g = mean_and_interval([e["gamma"] for e in etas])
        lam = mean_and_interval([e["lambda"] for e in etas])
        rows.append([name, f"{g[0]:.3f} ± {g[1]:.3f}", f"{lam[0]:.3f} ± {lam[1]:.3f}"])
    return [
        "## Final meta-parameters (mean ± t interval over seeds)",
        "",
        markdown_grid(["agent", "gamma", "lambda"], rows),
        "",
    ]


def _cell(cell_id: str, env: str, extra: dict, updates: int, quick_updates: int) -> Experiment:
    steps = BASE.num_envs * BASE.rollout_length
    learned = tuple(
        Learned(
            name,
            "metagradient",
            _config(env, extra, updates, variant),
            _config(env, extra, quick_updates, variant),
        )
        for name, variant in VARIANTS.items()
    )
    return Experiment(
        id=cell_id,
        paper="Xu, van Hasselt & Silver 2018 (NeurIPS; arXiv 1805.09801)",
        section="Sec. 4, Table 1",
        title=f"Meta-gradient RL on {env}",
        intro=(
            f"Actor-critic agents on {env} for {updates:,} updates of {steps} environment steps "
            f"(quick: {quick_updates:,}): the meta-gradient tunes gamma and lambda online from "
            f"gamma = {INITIAL_GAMMA}, with and without the eta embedding, beside fixed gamma = "
            f"0.9 and 0.99 (lambda 0.95). Rows: mean return of {EVAL_EPISODES} fresh episodes "
            "of the final policy."
        ),
        learned=learned,
        evaluate=evaluate,
        regret_plot=False,
        findings=_findings() if cell_id in FINDING_CELLS else (),
        figures=(
            Figure(
                f"xu2018-{cell_id}.png",
                f"Training return and gamma on {env} (mean ± sd over seeds)",
                _draw,
            ),
        ),
        sections=_sections,
        seeds=3,
        quick_seeds=1,
        num_test_tasks=EVAL_EPISODES,
        quick_test_tasks=EVAL_EPISODES,
    )


def _suite_sections(done: dict) -> list[str]:
    header = ["cell", *VARIANTS]
    rows = []
    for cell_id, cell in done.items():
        values = {r["agent"]: r for r in cell["results"]}
        etas = cell["analyses"]["final_eta"]
        rows.append(
            [
                cell_id,
                *(
                    f"{values[n]['mean_total_reward']:.2f} ± {values[n]['ci95']:.2f} "
                    f"(gamma {np.mean([e['gamma'] for e in etas[n]]):.3f})"
                    for n in VARIANTS
                ),
            ]
        )
    return [
        "## Final return (and final gamma) per environment",
        "",
        markdown_grid(header, rows),
        "",
        "The paper (Atari, IMPALA, 200M frames) reports that meta-learning gamma and lambda from "
        "the embedding-conditioned agent improves IMPALA's median human-normalised score, and "
        "that dropping the embedding loses much of the gain; its numbers are not comparable with "
        "one MinAtar game at 1M steps.",
    ]


SPEC = Suite(
    id="xu2018",
    paper="Xu, van Hasselt & Silver 2018 (NeurIPS; arXiv 1805.09801)",
    section="Sec. 4, Table 1",
    title="Meta-gradient RL: learning the discount and bootstrapping online",
    cells=lambda quick: [_cell(*cell) for cell in CELLS],
    intro=(
        "One agent per row learns on one environment; meta-gradient agents start at gamma = 0.9 "
        "and learn (gamma, lambda) by differentiating through their own update (online "
        "cross-validation with reference gamma' = 0.995, lambda' = 1)."
    ),
    sections=_suite_sections,
    cell_findings=True,
)
