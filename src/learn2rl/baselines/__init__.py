"""Registry of the classical baselines: ``get(name, family, num_pulls)`` builds an ``Agent``.

Bandit families (``baselines.bandits``): ``list_baselines()`` names them all;
``applicable(family)`` names those that make sense for a task family: the Beta(1,1) Gittins index
and the independent-arm Bayes-optimal policy only for ``BernoulliBandit`` with p ~ U[0,1] (for
other priors they would not be what their names claim). For Wang et al.'s dependent two-armed
bandits, ``bayes-optimal`` is the exact Bayes-optimal policy of ``baselines.dependent`` (a majority
vote of the evidence; see that module).

Random tabular MDPs (``TabularMDP``, RL^2 Table 2; ``baselines.mdp``): ``list_baselines(family)``
and ``applicable(family)`` name the MDP baselines (random, psrl, opsrl, ucrl2, beb, eps-greedy,
greedy), and ``get(name, family, num_episodes, **options)`` builds them; the third argument is
then the number of episodes of a trial. ``mdp.tuned_options(num_episodes)`` gives the constants
tuned on training tasks.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

from learn2rl.baselines import bandits, dependent, mdp
from learn2rl.baselines.bandits import (
    bayes_optimal_method,
    bayes_optimal_value,
    finite_horizon_gittins_index,
    gittins_index,
)
from learn2rl.baselines.dependent import dependent_bayes_optimal_value
from learn2rl.errors import Learn2RLError
from learn2rl.tasks.bandits import DependentBandit
from learn2rl.tasks.tabular_mdp import TabularMDP
from learn2rl.types import Agent


def _bayes_optimal(family, num_pulls: int, method: str | None = None) -> Agent:
    if isinstance(family, DependentBandit):
        if method is not None:
            raise Learn2RLError(
                "bayes-optimal takes no method for dependent arms: the policy there is exact"
            )
        return dependent.dependent_bayes_optimal_agent(family, num_pulls)
    return bandits.bayes_optimal_agent(family, num_pulls, method)


_FACTORIES: dict[str, Callable[..., Agent]] = {
    "random": bandits.random_agent,
    "greedy": bandits.greedy_agent,
    "eps-greedy": bandits.epsilon_greedy_agent,
    "ucb1": bandits.ucb1_agent,
    "thompson": bandits.thompson_agent,
    "oracle": bandits.oracle_agent,
    "gittins": bandits.gittins_agent,
    "bayes-optimal": _bayes_optimal,
}
_NEED_UNIFORM_BERNOULLI = ("gittins", "bayes-optimal")


def list_baselines(family=None) -> list[str]:
    """Names of all bandit baselines, in the order of the results tables; for a ``TabularMDP``
    family the tabular-MDP baselines instead (in the column order of RL^2 Table 2)."""
    if isinstance(family, TabularMDP):
        return list(mdp.AGENTS)
    return list(_FACTORIES)


def applicable(family) -> list[str]:
    """The baselines that make sense for ``family`` (none for a family that is neither a bandit
    nor a tabular MDP)."""
    if isinstance(family, TabularMDP):
        return list(mdp.AGENTS)
    try:
        bandits.reward_model(family)
    except Learn2RLError:
        return []
    uniform_bernoulli = bandits.has_uniform_bernoulli_prior(family)
    dependent_arms = isinstance(family, DependentBandit)
    return [
        name
        for name in _FACTORIES
        if uniform_bernoulli
        or name not in _NEED_UNIFORM_BERNOULLI
        or (dependent_arms and name == "bayes-optimal")
    ]


def get(name: str, family, num_pulls: int, **kwargs) -> Agent:
    """Build baseline ``name`` for ``family`` and trials of ``num_pulls`` pulls.

    Keyword arguments go to the baseline: ``epsilon`` (eps-greedy, default 0.1);
    ``prior_pseudo_counts`` (default True) and ``exploration`` (c, default 1.0) for ucb1; ``gamma``
    (gittins, default 0.9); ``method`` (bayes-optimal, default automatic, see
    ``bayes_optimal_method``). docs/baselines.md lists every detail that changes numbers.

    For a ``TabularMDP`` family ``num_pulls`` is the number of episodes of a trial and the
    options are those of ``baselines.mdp`` (see ``_get_mdp``).
    """
    if isinstance(family, TabularMDP):
        return _get_mdp(name, family, num_pulls, kwargs)
    if name not in _FACTORIES:
        raise Learn2RLError(
            f"unknown baseline {name!r}; known baselines: {', '.join(list_baselines())}"
        )
    num_pulls = bandits.check_num_pulls(num_pulls)
    bandits.reward_model(family)  # raises for non-bandit families
    usable = applicable(family)
    if name not in usable:
        family_name = getattr(family, "family_id", type(family).__name__)
        raise Learn2RLError(
            f"baseline {name!r} assumes independent Bernoulli arms with p ~ U[0,1]; for "
            f"{family_name} use one of: {', '.join(usable)}"
        )
    factory = _FACTORIES[name]
    options = [p for p in inspect.signature(factory).parameters if p not in ("family", "num_pulls")]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        accepted = ", ".join(options) if options else "none"
        raise Learn2RLError(
            f"baseline {name!r} got unknown option(s) {', '.join(unknown)}; accepted: {accepted}"
        )
    return factory(family, num_pulls, **kwargs)._replace(horizon=num_pulls)


def _get_mdp(name: str, family: TabularMDP, num_episodes, kwargs: dict) -> Agent:
    """A tabular-MDP baseline: ``epsilon`` (eps-greedy), ``num_samples`` (opsrl),
    ``confidence_scale`` and ``delta`` (ucrl2), ``beta`` (beb), and for every model-based one the
    prior it assumes (``reward_prior_mean``, ``reward_prior_std``, ``transition_prior``)."""
    names = list(mdp.AGENTS)
    if name not in names:
        if name in _FACTORIES:
            raise Learn2RLError(
                f"baseline {name!r} is a bandit baseline; for the tabular MDPs of "
                f"{family.family_id} use one of: {', '.join(names)}"
            )
        raise Learn2RLError(
            f"unknown baseline {name!r}; known tabular-MDP baselines: {', '.join(names)}"
        )
    num_episodes = bandits.check_num_pulls(num_episodes, "num_episodes")
    factory = mdp.AGENTS[name]
    options = [
        p for p in inspect.signature(factory).parameters if p not in ("family", "num_episodes")
    ]
    unknown = sorted(set(kwargs) - set(options))
    if unknown:
        accepted = ", ".join(options) if options else "none"
        raise Learn2RLError(
            f"baseline {name!r} got unknown option(s) {', '.join(unknown)}; accepted: {accepted}"
        )
    return factory(family, num_episodes, **kwargs)


__all__ = [
    "applicable",
    "bayes_optimal_method",
    "bayes_optimal_value",
    "dependent_bayes_optimal_value",
    "finite_horizon_gittins_index",
    "get",
    "gittins_index",
    "list_baselines",
]
