"""Ritter et al. 2018, "Been There, Done That: Meta-Learning with Episodic Recall" (ICML 2018,
arXiv 1805.09692): the episodic LSTM on barcode bandits whose contexts recur.

A trial is a sequence of bandit episodes, each labelled by a barcode; every barcode returns
several times with the same rewarding arm (``tasks/recurring_bandits.py``). An RL^2-style LSTM
resets its working memory between episodes, so it must explore a returning bandit again; the
epLSTM (``learners/episodic/episodic_lstm.py``) stores its cell state at the end of each episode,
keyed by the barcode, and reinstates it when the barcode returns. What the paper shows, and this
spec tests: on a returning context the epLSTM's first pull is already the rewarding arm while the
plain LSTM is at chance; reading turned off at test time puts the epLSTM back at the LSTM's level;
on novel contexts the two are alike. Rows: the epLSTM, the plain LSTM (``memory=False``, the same
otherwise), the epLSTM evaluated with retrieval off, and random play.

``learn2rl reproduce ritter2018 [--quick] [--seeds N] --out DIR``. The full run trains on the
paper's task (10 arms, 10 pulls, 100 episodes of 10 contexts); ``--quick`` on a smaller one
(20 episodes of 5 contexts) with one seed.
"""

from __future__ import annotations

import jax
import numpy as np

from learn2rl import plots
from learn2rl.analysis.seeds import mean_and_interval
from learn2rl.evaluation import EvalResult, ci95, evaluate
from learn2rl.experiments.common import EVAL_SEED
from learn2rl.experiments.spec import Analysis, Experiment, Figure, Finding, Learned
from learn2rl.learners.episodic.episodic_lstm import Config
from learn2rl.report import markdown_grid

EPLSTM, LSTM, OFF = "epLSTM", "LSTM", "epLSTM (retrieval off)"

CONFIG = Config(
    task="bandit/recurring-context",  # the paper's: 10 arms, 10 pulls, 100 episodes, 10 contexts
    hidden_size=48,
    num_tasks=32,
    num_updates=10000,
    updates_per_chunk=250,
    learning_rate=5e-3,
    final_learning_rate=5e-4,
    gamma=0.9,
    gae_lambda=1.0,
)
QUICK_TASK = (
    "bandit/recurring-context[num_arms=4,pulls_per_episode=5,num_episodes=20,num_contexts=5]"
)
QUICK_CONFIG = CONFIG.replace(task=QUICK_TASK, num_updates=3000)


# --- accuracy by pull -----------------------------------------------------------------------
def correct_by_pull(result: EvalResult, family, tasks) -> tuple[np.ndarray, np.ndarray]:
    """``(novel, returning)``, each ``[trials, pulls]``: the fraction of a trial's novel
    (returning) episodes whose k-th pull was the context's rewarding arm (NaN where a trial has
    no such episode). Rows of ``result`` are the ``tasks`` in order (one evaluation seed)."""
    actions = np.asarray(result.actions)
    pulls, episodes = family.pulls_per_episode, family.num_episodes
    best = np.take_along_axis(np.asarray(tasks.best_arm), np.asarray(tasks.schedule), 1)
    correct = actions.reshape(-1, episodes, pulls) == best[:, :, None]  # [trials, episodes, pulls]
    novel = np.asarray(jax.vmap(family.novel)(tasks))[:, :, None]
    with np.errstate(invalid="ignore"):  # a trial without returning episodes: NaN
        first = (correct & novel).sum(1) / novel.sum(1)
        later = (correct & ~novel).sum(1) / (~novel).sum(1)
    return first, later


def accuracy_by_pull(per_seed: list[EvalResult], family, tasks) -> dict:
    """Accuracy at each pull on novel and on returning contexts: the mean over seeds with
    Student's t interval over seeds, or with one seed the mean and normal interval over trials."""
    found = {}
    for kind, index in (("novel", 0), ("returning", 1)):
        rows = [correct_by_pull(r, family, tasks)[index] for r in per_seed]
        if len(rows) == 1:
            accuracy = np.nanmean(rows[0], axis=0)
            half = [ci95(column[~np.isnan(column)]) for column in rows[0].T]
        else:
            stats = [mean_and_interval(col) for col in np.array([np.nanmean(r, 0) for r in rows]).T]
            accuracy, half = [m for m, _ in stats], [h for _, h in stats]
        found[kind] = {"accuracy": [float(a) for a in accuracy], "ci95": [float(h) for h in half]}
    found["interval"] = "t over seeds" if len(per_seed) > 1 else "normal over trials (one seed)"
    return found


def _retrieval_off(outcome) -> dict:
    """Every epLSTM seed evaluated with reading turned off, on the same tasks and draws. The
    results join ``outcome.results`` (so the row appears in the table and figures); the
    analysis keeps their mean total reward per seed."""
    key = jax.random.PRNGKey(EVAL_SEED)
    results = []
    for learner, state in outcome.trained[EPLSTM]:
        agent = learner.agent(state.params, retrieval=False, name=OFF)
        results.append(evaluate(agent, outcome.family, outcome.tasks, outcome.num_episodes, key))
    outcome.results[OFF] = results
    return {"total_reward": [float(r.total_rewards.mean()) for r in results]}


def _accuracy(outcome) -> dict:
    family, tasks = outcome.family, outcome.tasks
    return {name: accuracy_by_pull(r, family, tasks) for name, r in outcome.results.items()}


# --- findings ---------------------------------------------------------------------------------
def _at(outcome, agent: str, kind: str, pull: int) -> tuple[float, float]:
    found = outcome.analyses["accuracy"][agent][kind]
    return found["accuracy"][pull], found["ci95"][pull]


def _text(value: float, half: float) -> str:
    return f"{value:.3f} ± {half:.3f}" if np.isfinite(half) else f"{value:.3f}"


def _recall_at_once(outcome):
    first, half = _at(outcome, EPLSTM, "returning", 0)
    explored, _ = _at(outcome, LSTM, "novel", -1)
    text = (
        f"epLSTM pull 1 on returning contexts: {_text(first, half)}; plain LSTM at the last "
        f"pull of an episode: {explored:.3f}"
    )
    return first - explored, text


def _lstm_at_chance(outcome):
    chance = 1.0 / outcome.family.num_arms
    first, half = _at(outcome, LSTM, "returning", 0)
    return abs(first - chance), f"{_text(first, half)} (chance {chance:.3f})"


def _lesion(outcome):
    off, off_half = _at(outcome, OFF, "returning", 0)
    plain, plain_half = _at(outcome, LSTM, "returning", 0)
    text = f"retrieval off: {_text(off, off_half)}; plain LSTM: {_text(plain, plain_half)}"
    return abs(off - plain), text


def _novel_alike(outcome):
    ep = np.array(outcome.analyses["accuracy"][EPLSTM]["novel"]["accuracy"])
    plain = np.array(outcome.analyses["accuracy"][LSTM]["novel"]["accuracy"])
    text = (
        f"mean over pulls: epLSTM {ep.mean():.3f}, LSTM {plain.mean():.3f}; pull 1: "
        f"{ep[0]:.3f} vs {plain[0]:.3f}; largest gap {np.abs(ep - plain).max():.3f}"
    )
    return abs(ep.mean() - plain.mean()), text


FINDINGS = (
    Finding("On a returning context the epLSTM's first pull is the rewarding arm about as often "
            "as a whole episode of exploration ends on it (reinstatement: exploit at once)",
            _recall_at_once, "pull-1 accuracy >= LSTM's last-pull accuracy - 0.05",
            lambda margin: margin >= -0.05),
    Finding("The plain LSTM's first pull on a returning context is at chance (it forgot)",
            _lstm_at_chance, "within 0.05 of 1 / arms", lambda gap: gap <= 0.05),
    Finding("Retrieval off at test time puts the epLSTM's first pull on a returning context "
            "at the plain LSTM's level", _lesion, "within 0.05", lambda gap: gap <= 0.05),
    Finding("On novel contexts the epLSTM and the plain LSTM are alike", _novel_alike,
            "mean accuracy over pulls within 0.05", lambda gap: gap <= 0.05),
)  # fmt: skip


# --- report -----------------------------------------------------------------------------------
def _draw(outcome, path) -> None:
    found = outcome.analyses["accuracy"]
    chance = 1.0 / outcome.family.num_arms
    with plots.figure(path, ncols=2, size=(11, 4)) as (novel, returning):
        for ax, kind in ((novel, "novel"), (returning, "returning")):
            plots.plot_lines(
                ax,
                {name: f[kind]["accuracy"] for name, f in found.items()},
                bands={name: f[kind]["ci95"] for name, f in found.items()},
                xlabel="pull within the episode",
                ylabel="P(rewarding arm)",
                title=f"{kind} contexts",
            )
            ax.axhline(chance, color="gray", lw=0.8, ls="--")
            ax.set_xticks(range(1, outcome.family.pulls_per_episode + 1))
            ax.set_ylim(0, 1.03)
            ax.legend(fontsize=8)


def _sections(outcome) -> list[str]:
    found = outcome.analyses["accuracy"]
    order = [EPLSTM, OFF, LSTM] + [name for name in found if name not in (EPLSTM, OFF, LSTM)]
    rows = []
    for name in order:
        f = found[name]
        for kind in ("novel", "returning"):
            accuracy = f[kind]["accuracy"]
            rows.append(
                [name, kind, _text(accuracy[0], f[kind]["ci95"][0]),
                 f"{np.mean(accuracy):.3f}", " / ".join(f"{a:.2f}" for a in accuracy)]
            )  # fmt: skip
    family = outcome.family
    return [
        "## Accuracy by pull",
        "",
        markdown_grid(["agent", "contexts", "pull 1", "mean over pulls", "per pull"], rows),
        "",
        f"Accuracy = fraction of pulls of the context's rewarding arm; chance is "
        f"1/{family.num_arms}. ± = 95% interval: Student's t over training seeds for a learned "
        "agent with several seeds, else normal over trials. A trial has "
        f"{family.num_contexts} novel and {family.num_episodes - family.num_contexts} returning "
        "episodes. No published numbers stand beside these: the paper's results were not "
        "available to this reproduction.",
        "",
    ]


SPEC = Experiment(
    id="ritter2018",
    paper="Ritter et al. 2018 (ICML 2018, arXiv 1805.09692)",
    section="the barcode bandits (contextual bandits whose contexts recur)",
    title="Ritter et al. 2018: the episodic LSTM on barcode bandits",
    learned=(
        Learned(EPLSTM, "episodic_lstm", CONFIG, QUICK_CONFIG),
        Learned(
            LSTM, "episodic_lstm", CONFIG.replace(memory=False), QUICK_CONFIG.replace(memory=False)
        ),
    ),  # fmt: skip
    baselines=("random",),
    findings=FINDINGS,
    intro=(
        "The epLSTM (LSTM-48 with a reinstatement gate and an episodic memory keyed by the "
        "barcode, one nearest neighbour) and the plain LSTM (no memory; otherwise the same, "
        "its working memory reset between episodes) are meta-trained by A2C on "
        "`bandit/recurring-context` (the context's arm pays 1 w.p. 0.9, the others 0.1; "
        "every barcode returns with the same arm). The epLSTM is also evaluated with reading "
        "turned off. Quick runs use 20 episodes of 5 contexts (25% novel) instead of 100 of 10 "
        "(10% novel)."
    ),
    num_test_tasks=1000,
    quick_test_tasks=1000,
    num_episodes=1,  # the family's gymnax episode is the whole trial
    seeds=3,
    quick_seeds=1,
    analyses=(Analysis("retrieval_off", _retrieval_off), Analysis("accuracy", _accuracy)),
    figures=(Figure("accuracy_by_pull.png", "Accuracy by pull", _draw),),
    sections=_sections,
)
