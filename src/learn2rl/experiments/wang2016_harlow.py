"""Wang et al. 2016 (arXiv 1611.05763): learning to learn on the Harlow task.

Harlow (1949) gave monkeys pair after pair of novel objects, one rewarded, shown several times
each; after many pairs they solved a new one after a single presentation (presentation 1 a guess,
presentations 2-6 near 100% correct). Wang et al. reproduced this with a meta-trained recurrent
agent, and the learning-to-learn curve: across meta-training, accuracy on presentations 2-6 rises
while presentation 1 stays at chance. Task ``harlow/vectors`` (``learn2rl.tasks.harlow``); the
reference agents are in ``learn2rl.baselines.harlow``, the accuracy in ``learn2rl.analysis.harlow``.

``learn2rl reproduce wang2016-harlow [--quick] [--seeds N] --out DIR``.
"""

from __future__ import annotations

from pathlib import Path

import jax

from learn2rl import checkpoint, plots, runner
from learn2rl.analysis.harlow import accuracy_by_presentation
from learn2rl.evaluation import evaluate
from learn2rl.experiments.common import EVAL_SEED, train_learner
from learn2rl.experiments.demo import DEMO_CONFIG
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned
from learn2rl.report import markdown_grid

PRESENTATIONS = 6  # per RL^2 trial (Harlow 1949; Wang et al. 2016)
CONFIG = DEMO_CONFIG.replace(  # the demo's A2C settings but for these:
    task="harlow/vectors",
    num_episodes=PRESENTATIONS,
    hidden_size=128,  # GRU-48 did not leave chance in 1500 updates (docs/results)
    num_tasks=128,
    num_updates=8000,
    updates_per_chunk=250,
    learning_rate=2e-3,
)
QUICK_CONFIG = CONFIG.replace(num_updates=3000)
# Updates after which RL^2's state is kept for the learning curve (multiples of updates_per_chunk).
STOPS = (0, 250, 500, 750, 1000, 1500, 2000, 3000, 4000, 6000, 8000)
STOPS_DIR = "stops"  # in each run directory: one checkpoint directory per stop, named by update


def train_in_stages(learner_id: str, config, where: Path, progress=True, console=None):
    """Train one run to the end, pausing at each of ``STOPS`` (and the end) to keep a copy of the
    train state in ``where/stops/<update>``. A stop already kept is not trained again; one that an
    earlier, interrupted run passed without keeping is skipped, not faked."""
    ckpt = where / runner.CHECKPOINT_DIR
    for stop in sorted({s for s in STOPS if s <= config.num_updates} | {config.num_updates}):
        kept = where / STOPS_DIR / str(stop)
        done = int(checkpoint.load_meta(ckpt)["update"]) if checkpoint.exists(ckpt) else 0
        if checkpoint.exists(kept) or done > stop:
            continue
        _, state = runner.train(learner_id, config, where, resume=checkpoint.exists(ckpt),
                                progress=progress, console=console, stop_at=stop)  # fmt: skip
        checkpoint.save(kept, state, checkpoint.load_meta(ckpt))
    return train_learner(learner_id, config, where, progress, console)  # reloads the finished run


def _presentations(outcome) -> dict:
    reward = outcome.family.correct_reward
    return {name: accuracy_by_presentation(r, reward) for name, r in outcome.results.items()}


def _learning_curve(outcome) -> list[dict]:
    """RL^2's accuracy at every stop all its seeds kept, on the held-out pairs of the table."""
    dirs = [where / STOPS_DIR for where in outcome.train_dirs["rl2"]]
    updates = set.intersection(*({int(p.name) for p in d.iterdir()} for d in dirs))
    key, curve = jax.random.PRNGKey(EVAL_SEED), []
    for update in sorted(updates):
        results = []
        for d in dirs:
            learner, state, _ = runner.load_learner(d / str(update), "rl2")
            agent = learner.agent(state.params, name="rl2")
            results.append(evaluate(agent, outcome.family, outcome.tasks, PRESENTATIONS, key))
        accuracy = accuracy_by_presentation(results, outcome.family.correct_reward)
        curve.append({"update": update, **accuracy})
    return curve


def _pm(found: dict, key: str) -> str:
    return f"{found[key]:.3f} ± {found[f'{key}_ci95']:.3f}"


def _one_shot(outcome):
    rl2 = outcome.analyses["presentations"]["rl2"]
    text = f"presentations 2-{PRESENTATIONS}: {_pm(rl2, 'rest')}; presentation 1: "
    return rl2["rest"] - rl2["rest_ci95"], text + _pm(rl2, "first")


def _first_at_chance(outcome):
    rl2 = outcome.analyses["presentations"]["rl2"]
    return abs(rl2["first"] - 0.5) - rl2["first_ci95"], _pm(rl2, "first")


def _learning_to_learn(outcome):
    curve = outcome.analyses["learning_curve"]
    start, end = curve[0], curve[-1]
    worst = max(curve, key=lambda p: abs(p["first"] - 0.5))
    rise, off = end["rest"] - start["rest"], abs(worst["first"] - 0.5)
    text = (
        f"2+: {start['rest']:.3f} at update {start['update']} -> {end['rest']:.3f} at update "
        f"{end['update']}; presentation 1 furthest from 0.5: {worst['first']:.3f} (update "
        f"{worst['update']})"
    )
    return min(rise - 0.3, 0.05 - off), text


FINDINGS = (
    Finding("After one presentation of a new pair RL^2 picks the rewarded object: accuracy on "
            "presentations 2-6 is far above presentation 1",
            _one_shot, "2+ CI lower bound > 0.9", lambda low: low > 0.9),
    Finding("Presentation 1 is at chance (nothing can be known about a new pair yet)",
            _first_at_chance, "CI contains 0.5", lambda margin: margin <= 0),
    Finding("Learning to learn: across meta-training, accuracy on presentations 2-6 rises from "
            "chance while presentation 1 stays at chance", _learning_to_learn,
            "2+ rises by > 0.3; presentation 1 within 0.05 of 0.5 at every point",
            lambda margin: margin > 0),
)  # fmt: skip


def _draw(path, curves, bands, title, **axes) -> None:
    with plots.figure(path) as ax:
        plots.plot_lines(ax, curves, ylabel="fraction correct (held-out pairs)", title=title,
                         bands=bands, **axes)  # fmt: skip
        ax.axhline(0.5, color="gray", lw=0.8, ls="--")
        ax.set_ylim(0.3, 1.03)


def _draw_presentations(outcome, path) -> None:
    found = outcome.analyses["presentations"]
    _draw(path, {name: a["accuracy"] for name, a in found.items()},
          {name: a["ci95"] for name, a in found.items()}, "Harlow task: held-out object pairs",
          xlabel="presentation of the object pair (Harlow's trial)")  # fmt: skip


def _draw_curve(outcome, path) -> None:
    curve = outcome.analyses["learning_curve"]
    parts = {"presentation 1": "first", f"presentations 2-{PRESENTATIONS}": "rest"}
    _draw(path, {label: [p[k] for p in curve] for label, k in parts.items()},
          {label: [p[f"{k}_ci95"] for p in curve] for label, k in parts.items()},
          "learning to learn: RL^2 across meta-training", x=[p["update"] for p in curve],
          xlabel="meta-training updates")  # fmt: skip


def _sections(outcome) -> list[str]:
    family, found = outcome.family, outcome.analyses["presentations"]
    optimum = (PRESENTATIONS - 0.5) * family.correct_reward + 0.5 * family.incorrect_reward
    rows = [
        [name, _pm(a, "first"), _pm(a, "rest"), " / ".join(f"{v:.2f}" for v in a["accuracy"])]
        for name, a in sorted(found.items(), key=lambda item: -sum(item[1]["accuracy"]))
    ]
    curve = [
        [p["update"], _pm(p, "first"), _pm(p, "rest")] for p in outcome.analyses["learning_curve"]
    ]
    rest = f"presentations 2-{PRESENTATIONS}"
    return [
        "## Accuracy by presentation",
        "",
        markdown_grid(
            ["agent", "presentation 1", rest, f"per presentation 1..{PRESENTATIONS}"], rows
        ),
        "",
        f"Accuracy = fraction of correct choices; ± = 95% CI (normal approximation over pairs). "
        f"Exact optimum: {optimum:g} expected total reward (presentation 1 is a coin flip, then "
        "always right); the tests check the win-stay-lose-shift-on-objects agent against it and "
        "random / win-stay-lose-shift-on-sides against 50% per presentation.",
        "",
        "## Across meta-training (RL^2 on the same held-out pairs, every training seed)",
        "",
        markdown_grid(["update", "presentation 1", rest], curve),
        "",
    ]


SPEC = Experiment(
    id="wang2016-harlow",
    paper="Wang et al. 2016 (arXiv 1611.05763)",
    section="Sec. 3.2, the Harlow task (learning to learn)",
    title="Wang et al. 2016: the Harlow task (learning to learn)",
    learned=(Learned("rl2", "rl2", CONFIG, QUICK_CONFIG),),
    baselines=("wsls-objects", "wsls-sides", "random"),
    findings=FINDINGS,
    intro=(
        "RL^2 (GRU-128, A2C, gamma 0.9) is meta-trained on training pairs of `harlow/vectors` "
        "(two objects of 8 N(0,1) features, 6 presentations per pair in random left/right "
        "places; reward 1 for the rewarded object, 0 for the other), its state kept at "
        f"updates {', '.join(map(str, STOPS))} (those up to the end of the run) for the learning "
        "curve. Quick runs train for 3000 updates instead of 8000."
    ),
    num_test_tasks=5000,
    quick_test_tasks=2000,
    train=train_in_stages,
    analyses=(
        Analysis("presentations", _presentations),
        Analysis("learning_curve", _learning_curve),
    ),
    figures=(
        Figure("presentations.png", "Accuracy per presentation", _draw_presentations),
        Figure("learning_curve.png", "Accuracy across meta-training", _draw_curve),
    ),
    sections=_sections,
)
