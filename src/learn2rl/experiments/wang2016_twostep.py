"""Wang et al. 2016 (arXiv 1611.05763): RL^2 on the two-step task shows model-based behaviour.

Task ``twostep/daw2011`` (``learn2rl.tasks.two_step``), Daw et al. 2011's two-step task with
reversals of the good state. Wang et al. meta-trained a recurrent A2C agent on it and found the
signature of model-based control in Daw et al.'s analysis: the probability of repeating the
previous first-stage choice depends on the *interaction* of reward and transition type, not only on
reward as a model-free learner's would. The analysis (stay plot and Akam et al.'s regression) is
``learn2rl.analysis.two_step``; the reference agents are ``learn2rl.baselines.two_step``.

``learn2rl reproduce wang2016-twostep [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

import numpy as np

from learn2rl import plots
from learn2rl.analysis import two_step
from learn2rl.experiments.demo import DEMO_CONFIG
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned
from learn2rl.report import markdown_grid

# The demo's settings (Wang et al.'s bandits: GRU-48, A2C, gamma 0.9, entropy 0.05 -> 0).
CONFIG = DEMO_CONFIG.replace(
    task="twostep/daw2011",
    num_episodes=1,  # one episode = 100 two-step trials = 200 steps
    num_tasks=128,
    num_updates=2000,
    updates_per_chunk=50,
)
QUICK_CONFIG = CONFIG.replace(num_updates=400)
AGENTS = ("ideal-observer", "model-based", "model-free", "random", "oracle")
PLOTTED = ("rl2", "model-based", "model-free", "ideal-observer")


def _stay(outcome) -> dict:
    """Per agent: the stay analysis and the reward per two-step trial (tasks x seeds pooled)."""
    good = np.asarray(outcome.tasks.good)
    found = {}
    for name in outcome.results:
        merged = outcome.merged(name)
        reward, half = two_step.reward_per_trial(merged)
        found[name] = two_step.stay_analysis(merged, good) | {"reward": reward, "reward_ci95": half}
    return found


def _ci(ci) -> str:
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def _coef(outcome, agent: str, regressor: str = "reward x transition") -> dict:
    return outcome.analyses["stay"][agent]["regression"][regressor]


def _interaction(outcome):
    rl2 = outcome.analyses["stay"]["rl2"]
    value, ci = rl2["effects"]["interaction"], rl2["effects_ci95"]["interaction"]
    text = f"interaction {value:+.3f}, 95% bootstrap CI {_ci(ci)} over {rl2['episodes']} test"
    return ci[0], text + " episodes"


def _controlled(outcome):
    rl2, mf = _coef(outcome, "rl2"), _coef(outcome, "model-free")
    text = f"RL^2 coefficient {rl2['coef']:+.2f} {_ci(rl2['ci95'])}; model-free "
    return rl2["ci95"][0], text + f"{mf['coef']:+.2f} {_ci(mf['ci95'])}"


def _dominates(outcome):
    text = "; ".join(
        f"{agent} interaction {_coef(outcome, agent)['coef']:+.2f} vs reward "
        f"{_coef(outcome, agent, 'reward')['coef']:+.2f}"
        for agent in ("rl2", "model-free", "model-based")
    )
    return _coef(outcome, "rl2")["coef"] - 2 * abs(_coef(outcome, "rl2", "reward")["coef"]), text


def _chance(outcome) -> float:
    return float(np.mean(outcome.family.trial_value))


def _above_chance(outcome):
    rl2, chance = outcome.analyses["stay"]["rl2"], _chance(outcome)
    text = f"{rl2['reward']:.3f} ± {rl2['reward_ci95']:.3f} (random {chance:.2f})"
    return rl2["reward"] - rl2["reward_ci95"] - chance, text


def _gap_closed(outcome):
    stay, chance = outcome.analyses["stay"], _chance(outcome)
    rl2, ideal = stay["rl2"]["reward"], stay["ideal-observer"]["reward"]
    closed = (rl2 - chance) / (ideal - chance)
    text = f"RL^2 {rl2:.3f}, ideal observer {ideal:.3f}, oracle {outcome.family.trial_value[0]:.2f}"
    return closed, text + f": {100 * closed:.0f}% of the random-to-ideal gap closed"


FINDINGS = (
    Finding("RL^2 shows the model-based signature in the stay plot: stay after rewarded-common "
            "and unrewarded-rare is higher (reward x transition interaction > 0)",
            _interaction, "CI lower bound > 0", lambda low: low > 0),
    Finding("The interaction survives controlling for choice correctness (logistic regression, "
            "Akam et al. 2015), which removes the model-free agent's spurious one",
            _controlled, "RL^2 CI lower bound > 0", lambda low: low > 0),
    Finding("RL^2 is model-based rather than model-free: its interaction coefficient dominates "
            "its reward coefficient (the model-free agent: the reverse)",
            _dominates, "RL^2 interaction > 2 x abs(reward)", lambda margin: margin > 0),
    Finding("RL^2 earns more than chance per two-step trial",
            _above_chance, "CI lower bound > random", lambda margin: margin > 0),
    Finding("RL^2 approaches the best achievable reward (the oracle knows the good state; the "
            "ideal observer is the best agent that does not)",
            _gap_closed, ">= 80% of the gap closed", lambda closed: closed >= 0.8),
)  # fmt: skip


def _draw_stay(outcome, path) -> None:
    """Daw et al.'s plot: P(stay) after rewarded / unrewarded x common / rare, per agent."""
    with plots.figure(path, ncols=len(PLOTTED), size=(3.0 * len(PLOTTED), 3.4)) as axes:
        for ax, name in zip(axes, PLOTTED, strict=True):
            found = outcome.analyses["stay"][name]
            p, ci = np.asarray(found["stay_probability"]), np.asarray(found["stay_ci95"])
            title = f"{name}\ninteraction {found['effects']['interaction']:+.2f}"
            plots.plot_intervals(
                ax,
                {"common": p[[0, 2]], "rare": p[[1, 3]]},
                {"common": ci[[0, 2]].T, "rare": ci[[1, 3]].T},
                ylabel="P(repeat first-stage choice)",
                title=title,
                dodge=0.4,
            )
            ax.set_xticks([0, 1], ["rewarded", "unrewarded"])
            ax.set_ylim(0, 1.05)


def _sections(outcome) -> list[str]:
    family, stay = outcome.family, outcome.analyses["stay"]
    rows = []
    for name in sorted(stay, key=lambda n: -stay[n]["reward"]):
        found, regression = stay[name], stay[name]["regression"]
        effects, intervals = found["effects"], found["effects_ci95"]
        inter, reward = regression["reward x transition"], regression["reward"]
        rows.append([
            name, f"{found['reward']:.3f}", f"±{found['reward_ci95']:.3f}",
            " / ".join(f"{v:.2f}" for v in found["stay_probability"]),
            f"{effects['interaction']:+.3f} {_ci(intervals['interaction'])}",
            f"{effects['reward']:+.3f} {_ci(intervals['reward'])}",
            f"{inter['coef']:+.2f} {_ci(inter['ci95'])}",
            f"{reward['coef']:+.2f} {_ci(reward['ci95'])}",
        ])  # fmt: skip
    header = ["agent", "reward / two-step trial", "95% CI", "P(stay) rc / rr / uc / ur",
              "interaction [95% CI]", "reward effect [95% CI]",
              "regression: interaction [95% CI]", "regression: reward [95% CI]"]  # fmt: skip
    best, chance = family.trial_value[0], _chance(outcome)
    return [
        "## Stay probabilities (Daw et al. 2011) and the regression (Akam et al. 2015)",
        "",
        markdown_grid(header, rows),
        "",
        "rc / rr / uc / ur: after a rewarded-common, rewarded-rare, unrewarded-common, "
        "unrewarded-rare two-step trial; interaction = [P(rc) - P(rr)] - [P(uc) - P(ur)], reward "
        "effect = mean over transitions of P(stay | rewarded) - P(stay | unrewarded). Regression: "
        "logistic regression of stay on reward, transition, their interaction and previous choice "
        f"correct, all +-1, ridge {two_step.RIDGE} (Akam, Costa & Dayan 2015): with reversals the "
        "raw plot credits a model-free learner with an interaction, because rewarded-common and "
        "unrewarded-rare outcomes follow mostly correct choices, which it repeats. CIs: 95% "
        f"percentile bootstrap over test episodes ({two_step.NUM_BOOTSTRAP} resamples).",
        "",
        f"Exact references: the oracle (privileged) earns {best:.2f} per two-step trial "
        f"({family.p_common} x {family.p_good} + {1 - family.p_common:.2f} x {family.p_bad}), a "
        f"random agent {chance:.2f}. The ideal observer (Bayesian belief over which state is good, "
        "greedy choice) is the best an agent without the task parameters can do. Regret: "
        "pseudo-regret against the oracle (0.4 per choice of the action whose common state is bad)",
        "",
    ]


SPEC = Experiment(
    id="wang2016-twostep",
    paper="Wang et al. 2016 (arXiv 1611.05763)",
    section="Sec. 3.2, the two-step task (Daw et al. 2011)",
    title="Wang et al. 2016: the two-step task (Daw et al. 2011)",
    learned=(Learned("rl2", "rl2", CONFIG, QUICK_CONFIG),),
    baselines=AGENTS,
    record_obs=True,
    findings=FINDINGS,
    intro=(
        "RL^2 (GRU-48, A2C, gamma 0.9) is meta-trained on training tasks; one RL^2 trial = one "
        "episode of 100 two-step trials (200 environment steps) of `twostep/daw2011`: common "
        "transition 0.75, the good state pays 0.9, the other 0.1, and it swaps with probability "
        "0.025 before each two-step trial (the schedule is part of the task, so all agents face "
        "the same reversals). Quick runs train for 400 updates instead of 2000."
    ),
    num_test_tasks=2000,
    quick_test_tasks=500,
    analyses=(Analysis("stay", _stay),),
    figures=(Figure("stay_probability.png", "Stay probabilities", _draw_stay),),
    sections=_sections,
)
