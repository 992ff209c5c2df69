"""Registry of the classical (non-learned) baselines: ``get(name, family, num_episodes)`` builds an
``Agent`` for any registered task family.

Every kind of task family has a module of agents and a table of factories
``factory(family, num_episodes, **options)``; ``KINDS`` maps family classes to them, first match
first (a subclass before its base class):

============================  =====================  ============================================
kind (family classes)         module                 baselines
============================  =====================  ============================================
bandits (Bernoulli, Gaussian  bandits, gittins,      random, greedy, eps-greedy, ucb1, thompson,
and dependent arms)           bayes_optimal,         oracle, gittins, bayes-optimal
                              dependent
restless bandits              restless               random, oracle, ucb1, bayes-optimal
informative-arm bandits       informative            random, oracle, bayes-optimal,
                                                     best-without-informative
two-step tasks                two_step               random, oracle, model-free, model-based,
                                                     ideal-observer
Harlow tasks                  harlow                 random, oracle, wsls-objects, wsls-sides
one-goal gridworlds           navigation             random, oracle, search-return
tabular MDPs                  mdp                    random, psrl, opsrl, ucrl2, beb, eps-greedy,
                                                     greedy, oracle
mazes                         maze                   random, oracle
point-navigation tasks        control                random, oracle
continuous-control families   control                random
other task families           generic                random
============================  =====================  ============================================

``random`` is one agent for every family (``baselines.generic.random_agent``: uniform over
``num_actions``, or uniform in the action box of a continuous family). Some baselines have
conditions, which ``applicable(family)`` applies: the Beta(1,1) Gittins index and the
independent-arm Bayes-optimal policy only for ``BernoulliBandit`` with p ~ U[0,1] (for other priors
they would not be what their names claim); for Wang et al.'s dependent two-armed bandits
``bayes-optimal`` is the exact policy of ``baselines.dependent`` (a majority vote of the evidence);
the restless ``bayes-optimal`` only for dependent arms. ``list_baselines(family)`` names every
baseline of the family's kind (without a family: the bandit baselines); ``applicable_by_kind()``
lists, per kind, the registered task ids and what applies to each (``learn2rl list``).

The third argument of ``get`` is the number of episodes of a trial. A bandit episode is one pull,
so for bandits it is the number of pulls, and their agents carry it as their ``horizon`` (the
Gittins and Bayes-optimal tables end there). For ``TabularMDP`` families
``mdp.tuned_options(num_episodes)`` gives the constants tuned on training tasks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from learn2rl.baselines import (
    bandits,
    bayes_optimal,
    control,
    dependent,
    generic,
    gittins,
    harlow,
    informative,
    maze,
    mdp,
    navigation,
    restless,
    two_step,
)
from learn2rl.baselines.bayes_optimal import bayes_optimal_method, bayes_optimal_value
from learn2rl.baselines.dependent import dependent_bayes_optimal_value
from learn2rl.baselines.gittins import finite_horizon_gittins_index, gittins_index
from learn2rl.errors import Learn2RLError
from learn2rl.tasks.bandits import BernoulliBandit, DependentBandit, GaussianBandit
from learn2rl.tasks.base import TaskFamily
from learn2rl.tasks.control.base import ControlFamily
from learn2rl.tasks.control.point import PointNavigation
from learn2rl.tasks.harlow import HarlowTask
from learn2rl.tasks.informative import InformativeBandit
from learn2rl.tasks.maze import Maze
from learn2rl.tasks.navigation import OneGoalGridworld
from learn2rl.tasks.restless import RestlessBandit
from learn2rl.tasks.tabular_mdp import TabularMDP
from learn2rl.tasks.two_step import TwoStepTask
from learn2rl.types import Agent


@dataclass(frozen=True)
class Kind:
    """One kind of task family and its baselines.

    ``baselines`` maps names to ``factory(family, num_episodes, **options)``; ``conditions`` maps
    the names that do not apply to every family of the kind to ``(predicate(family), what the
    baseline assumes)``. ``count`` names ``get``'s third argument in messages; with ``horizon``
    the built agents carry that number as their ``horizon``.
    """

    name: str  # plural, as ``learn2rl list`` shows it: "tabular MDPs"
    noun: str  # in messages: "a tabular-MDP baseline", "known tabular-MDP baselines"
    families: tuple[type, ...]
    baselines: Mapping[str, Callable[..., Agent]]
    conditions: Mapping[str, tuple[Callable[[Any], bool], str]] = field(default_factory=dict)
    count: str = "num_episodes"
    horizon: bool = False


def _bayes_optimal(family, num_pulls: int, method: str | None = None) -> Agent:
    if isinstance(family, DependentBandit):
        if method is not None:
            raise Learn2RLError(
                "bayes-optimal takes no method for dependent arms: the policy there is exact"
            )
        return dependent.dependent_bayes_optimal_agent(family, num_pulls)
    return bayes_optimal.bayes_optimal_agent(family, num_pulls, method)


def _bandit_random(family, num_pulls: int) -> Agent:
    return generic.random_agent(family)


_INDEPENDENT_UNIFORM = "assumes independent Bernoulli arms with p ~ U[0,1]"

BANDITS = Kind(
    name="bandits",
    noun="bandit",
    families=(BernoulliBandit, GaussianBandit, DependentBandit),
    baselines={
        "random": _bandit_random,
        "greedy": bandits.greedy_agent,
        "eps-greedy": bandits.epsilon_greedy_agent,
        "ucb1": bandits.ucb1_agent,
        "thompson": bandits.thompson_agent,
        "oracle": bandits.oracle_agent,
        "gittins": gittins.gittins_agent,
        "bayes-optimal": _bayes_optimal,
    },
    conditions={
        "gittins": (bandits.has_uniform_bernoulli_prior, _INDEPENDENT_UNIFORM),
        "bayes-optimal": (
            lambda family: (
                bandits.has_uniform_bernoulli_prior(family) or isinstance(family, DependentBandit)
            ),
            _INDEPENDENT_UNIFORM,
        ),
    },
    count="num_pulls",
    horizon=True,
)

KINDS: tuple[Kind, ...] = (
    BANDITS,
    Kind(
        "restless bandits",
        "restless-bandit",
        (RestlessBandit,),
        restless.BASELINES,
        {
            "bayes-optimal": (
                lambda family: family.arms == "dependent",
                "is exact only for dependent arms (p, 1 - p)",
            )
        },
    ),
    Kind("informative-arm bandits", "informative-arm", (InformativeBandit,), informative.BASELINES),
    Kind("two-step tasks", "two-step", (TwoStepTask,), two_step.BASELINES),
    Kind("Harlow tasks", "Harlow", (HarlowTask,), harlow.BASELINES),
    Kind("one-goal gridworlds", "gridworld", (OneGoalGridworld,), navigation.BASELINES),
    Kind("tabular MDPs", "tabular-MDP", (TabularMDP,), mdp.BASELINES),
    Kind("mazes", "maze", (Maze,), maze.BASELINES),
    Kind("point-navigation tasks", "point-navigation", (PointNavigation,), control.POINT_BASELINES),
    Kind("continuous-control families", "continuous-control", (ControlFamily,), control.BASELINES),
    Kind(
        "other task families",
        "generic",
        (TaskFamily,),
        {"random": lambda family, num_episodes: generic.random_agent(family)},
    ),
)


def kind_of(family) -> Kind | None:
    """The ``Kind`` of ``family`` (the first in ``KINDS`` it is an instance of), or ``None``."""
    return next((kind for kind in KINDS if isinstance(family, kind.families)), None)


def list_baselines(family=None) -> list[str]:
    """Names of every baseline of ``family``'s kind, in the order of its results tables (for a
    ``TabularMDP`` the columns of RL^2 Table 2, then the oracle); without a family the bandit
    baselines; none for an object that is not a task family."""
    kind = BANDITS if family is None else kind_of(family)
    return [] if kind is None else list(kind.baselines)


def applicable(family) -> list[str]:
    """The baselines that make sense for ``family``: those of its kind whose conditions it meets
    (at least ``random`` for every task family; none for other objects)."""
    kind = kind_of(family)
    if kind is None:
        return []
    return [
        name
        for name in kind.baselines
        if name not in kind.conditions or kind.conditions[name][0](family)
    ]


def applicable_by_kind(task_ids=None) -> list[tuple[str, list[tuple[str, list[str]]]]]:
    """``[(kind name, [(task id, applicable baselines), ...]), ...]`` for the registered task ids
    (or ``task_ids``), in the order of ``KINDS``; builds each family with ``tasks.make``."""
    from learn2rl import tasks

    rows: dict[str, list[tuple[str, list[str]]]] = {kind.name: [] for kind in KINDS}
    for task_id in tasks.list_tasks() if task_ids is None else task_ids:
        family = tasks.make(task_id)
        rows[kind_of(family).name].append((task_id, applicable(family)))
    return [(kind.name, rows[kind.name]) for kind in KINDS if rows[kind.name]]


def _article(noun: str) -> str:
    return "an" if noun[0].lower() in "aeiou" else "a"


def get(name: str, family, num_episodes: int, **options) -> Agent:
    """Build baseline ``name`` for ``family`` and trials of ``num_episodes`` episodes (for
    bandits: pulls).

    Keyword arguments go to the baseline. Bandits: ``epsilon`` (eps-greedy, default 0.1);
    ``prior_pseudo_counts`` (default True) and ``exploration`` (c, default 1.0) for ucb1;
    ``gamma`` (gittins, default 0.9); ``method`` (bayes-optimal, default automatic, see
    ``bayes_optimal_method``). Tabular MDPs: ``epsilon`` (eps-greedy), ``num_samples`` (opsrl),
    ``confidence_scale`` and ``delta`` (ucrl2), ``beta`` (beb), and for every model-based one the
    prior it assumes (``reward_prior_mean``, ``reward_prior_std``, ``transition_prior``).
    Restless bandits: ``exploration`` (ucb1). Two-step: ``alpha``, ``beta`` (model-free,
    model-based). docs/baselines.md lists every detail that changes numbers.

    Raises ``Learn2RLError`` (one line) for an object that is not a task family, an unknown name
    (listing the known ones), a non-positive or non-integer ``num_episodes``, a baseline that does
    not apply to the family, and unknown options.
    """
    kind = kind_of(family)
    if kind is None:
        raise Learn2RLError(
            f"the baselines need a task family (learn2rl.tasks), got {type(family).__name__}"
        )
    family_name = getattr(family, "family_id", None) or type(family).__name__
    if name not in kind.baselines:
        others = [k.noun for k in KINDS if name in k.baselines]
        usable = ", ".join(applicable(family))
        if len(others) == 1:
            raise Learn2RLError(
                f"baseline {name!r} is {_article(others[0])} {others[0]} baseline; for the "
                f"{kind.name} of {family_name} use one of: {usable}"
            )
        if others:
            raise Learn2RLError(
                f"baseline {name!r} has no version for the {kind.name} of {family_name}; use one "
                f"of: {usable}"
            )
        raise Learn2RLError(
            f"unknown baseline {name!r}; known {kind.noun} baselines: {', '.join(kind.baselines)}"
        )
    num_episodes = bandits.check_num_pulls(num_episodes, kind.count)
    if name in kind.conditions and not kind.conditions[name][0](family):
        raise Learn2RLError(
            f"baseline {name!r} {kind.conditions[name][1]}; for {family_name} use one of: "
            f"{', '.join(applicable(family))}"
        )
    factory = kind.baselines[name]
    accepted = list(inspect.signature(factory).parameters)[2:]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise Learn2RLError(
            f"baseline {name!r} got unknown option(s) {', '.join(unknown)}; accepted: "
            f"{', '.join(accepted) if accepted else 'none'}"
        )
    agent = factory(family, num_episodes, **options)
    return agent._replace(horizon=num_episodes) if kind.horizon else agent


__all__ = [
    "KINDS",
    "Kind",
    "applicable",
    "applicable_by_kind",
    "bayes_optimal_method",
    "bayes_optimal_value",
    "dependent_bayes_optimal_value",
    "finite_horizon_gittins_index",
    "get",
    "gittins_index",
    "kind_of",
    "list_baselines",
]
