"""Named reproductions of published experiments (``learn2rl reproduce NAME``)."""

from __future__ import annotations

from collections.abc import Callable

from learn2rl.errors import Learn2RLError


def _demo(out, quick, progress, console):
    from learn2rl.experiments import demo

    return demo.run(out, quick=quick, progress=progress, console=console)


def _duan2016_bandits(out, quick, progress, console):
    from learn2rl.experiments import duan2016

    return duan2016.run_bandits(out, quick=quick, progress=progress, console=console)


_EXPERIMENTS: dict[str, tuple[Callable, str]] = {
    "demo": (_demo, "RL^2 vs bandit baselines, 2 arms, 100 pulls (the main job)"),
    "duan2016-bandits": (
        _duan2016_bandits,
        "RL^2 Table 1: k in {5,10,50} arms x n in {10,100,500} pulls",
    ),
}


def list_experiments() -> dict[str, str]:
    return {name: description for name, (_, description) in sorted(_EXPERIMENTS.items())}


def get_experiment(name: str) -> Callable:
    if name not in _EXPERIMENTS:
        raise Learn2RLError(
            f"unknown experiment {name!r}; known experiments: {', '.join(sorted(_EXPERIMENTS))}"
        )
    return _EXPERIMENTS[name][0]
