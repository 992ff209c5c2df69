"""Named reproductions of published experiments (``learn2rl reproduce NAME``)."""

from __future__ import annotations

from collections.abc import Callable

from learn2rl.errors import Learn2RLError


def _demo(out, quick, progress, console):
    from learn2rl.experiments import demo

    return demo.run(out, quick=quick, progress=progress, console=console)


def _spec_runner(module_name: str, attribute: str = "SPEC") -> Callable:
    """An experiment declared as a spec (``SPEC``, or ``attribute``, in its module: an
    ``Experiment`` or a ``Suite``) and run by the pipeline: it takes ``seeds``, ``seed`` and
    ``overrides`` (``--set``) as well."""

    def run(out, quick, progress, console, **options):
        import importlib

        from learn2rl.experiments import pipeline
        from learn2rl.experiments.spec import Suite

        spec = getattr(importlib.import_module(f"learn2rl.experiments.{module_name}"), attribute)
        if not isinstance(spec, Suite) and options.get("cells"):
            raise Learn2RLError(f"{spec.id} is a single experiment: it has no cells to choose")
        go = pipeline.run_suite if isinstance(spec, Suite) else pipeline.run
        return go(spec, out, quick=quick, progress=progress, console=console, **options)

    run.takes_options = True
    return run


_EXPERIMENTS: dict[str, tuple[Callable, str]] = {
    "demo": (_demo, "RL^2 vs bandit baselines, 2 arms, 100 pulls (the main job)"),
    "duan2016-bandits": (
        _spec_runner("duan2016"),
        "RL^2 Table 1: k in {5,10,50} arms x n in {10,100,500} pulls",
    ),
    "duan2016-mdps": (
        _spec_runner("duan2016_mdps"),
        "RL^2 Table 2: random tabular MDPs, n in {10,25,50,75,100} episodes, vs PSRL/UCRL2/BEB",
    ),
    "duan2016-mazes": (
        _spec_runner("duan2016_mazes"),
        "RL^2 Table 3: 2 episodes in unseen 5x5 mazes, successful-episode length falls",
    ),
    "example-bandits": (
        _spec_runner("example_bandits"),
        "Worked example: RL^2 on 5-armed bandits with 10 pulls vs Thompson sampling and UCB1",
    ),
    "wang2016-independent": (
        _spec_runner("wang2016_independent"),
        "Wang et al. 2016: 2 independent arms, 100 pulls, regret vs Gittins/Thompson/UCB1",
    ),
    "wang2016-dependent": (
        _spec_runner("wang2016_dependent"),
        "Wang et al. 2016: dependent arms, train on one prior, test on all (transfer matrix)",
    ),
    "wang2016-informative": (
        _spec_runner("wang2016_informative"),
        "Wang et al. 2016: 11-armed informative-arm task (Bayes-optimal 20.55)",
    ),
    "wang2016-restless": (
        _spec_runner("wang2016_restless"),
        "Wang et al. 2016: restless bandits, effective learning rate vs volatility",
    ),
    "wang2016-twostep": (
        _spec_runner("wang2016_twostep"),
        "Wang et al. 2016: two-step task, stay probabilities (model-based signature)",
    ),
    "wang2016-harlow": (
        _spec_runner("wang2016_harlow"),
        "Wang et al. 2016: Harlow task, trial-1 vs trial-2+ accuracy on novel object pairs",
    ),
    "wang2016-navigation": (
        _spec_runner("wang2016_navigation"),
        "Wang et al. 2016: one-shot navigation, steps to goal in episode 1 vs later episodes",
    ),
    "finn2017-pointnav": (
        _spec_runner("finn2017"),
        "Finn et al. 2017 Table 4: MAML, Reptile, MAESN, RL^2 on 2-D point navigation",
    ),
    "finn2017-pointnav-paper": (
        _spec_runner("finn2017", "POINTNAV_PAPER"),
        "Finn et al. 2017 Table 4 for MAML with the paper code's settings: TRPO, inner step 0.5",
    ),
    "finn2017-cheetah-dir": (
        _spec_runner("finn2017", "CHEETAH_DIR"),
        "Finn et al. 2017 Table 5: MAML on half-cheetah direction, the paper's batch, PPO (CPU)",
    ),
    "finn2017-cheetah-dir-paper": (
        _spec_runner("finn2017", "CHEETAH_DIR_PAPER"),
        "Finn et al. 2017 Table 5 with the paper's TRPO outer loop and 500 meta-updates",
    ),
    "hochreiter2001": (
        _spec_runner("hochreiter2001"),
        "Hochreiter et al. 2001: an LSTM learns to fit new quadratic functions in its activations",
    ),
    "kirsch2020": (
        _spec_runner("kirsch2020"),
        "Kirsch et al. 2020 (MetaGenRL): a learned objective trains agents on unseen environments",
    ),
    "houthooft2018": (
        _spec_runner("houthooft2018"),
        "Houthooft et al. 2018 (EPG): an evolved loss trains policies on held-out directions",
    ),
    "peng2018": (
        _spec_runner("peng2018"),
        "Peng et al. 2018: RL^2 over randomized CartPole physics vs nominal, held-out physics",
    ),
    "wang2019-poet": (
        _spec_runner("wang2019_poet"),
        "Wang et al. 2019 (POET): courses solved via stepping stones that ES alone does not solve",
    ),
    "gupta2018": (
        _spec_runner("gupta2018"),
        "Gupta et al. 2018: RL^2 meta-trained on DIAYN skills vs random skills, goals, scratch",
    ),
    "pritzel2017": (
        _spec_runner("pritzel2017"),
        "Pritzel et al. 2017: NEC learns MinAtar games faster early than DQN, MFEC beside",
    ),
    "ritter2018": (
        _spec_runner("ritter2018"),
        "Ritter et al. 2018: episodic LSTM recalls returning bandits at the first pull",
    ),
    "xu2018": (
        _spec_runner("xu2018"),
        "Xu et al. 2018: meta-gradients tune gamma, lambda online (Breakout-MinAtar, Catch, chain)",
    ),
}


def list_experiments() -> dict[str, str]:
    return {name: description for name, (_, description) in sorted(_EXPERIMENTS.items())}


def takes_options(name: str) -> bool:
    """Whether experiment ``name`` runs on the spec pipeline (takes --seeds, --seed, --set)."""
    return getattr(get_experiment(name), "takes_options", False)


def get_experiment(name: str) -> Callable:
    if name not in _EXPERIMENTS:
        raise Learn2RLError(
            f"unknown experiment {name!r}; known experiments: {', '.join(sorted(_EXPERIMENTS))}"
        )
    return _EXPERIMENTS[name][0]
