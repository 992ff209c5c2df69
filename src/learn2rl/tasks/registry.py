"""Task registry: ``make(id)`` builds a task family from its id; ``list_tasks()`` lists the ids."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Callable
from typing import Any

from learn2rl.errors import Learn2RLError
from learn2rl.tasks.bandits import (
    DEPENDENT_PRIORS,
    BernoulliBandit,
    DependentBandit,
    GaussianBandit,
)
from learn2rl.tasks.base import TaskFamily

_REGISTRY: dict[str, tuple[Callable[..., TaskFamily], dict[str, Any], str]] = {}


def register(task_id: str, factory: Callable[..., TaskFamily], description: str, **defaults):
    """Register a family under ``task_id``; ``make(task_id, **overrides)`` calls the factory."""
    if task_id in _REGISTRY:
        raise Learn2RLError(f"task id {task_id!r} is already registered")
    _REGISTRY[task_id] = (factory, defaults, description)


def parse_options(task_id: str) -> tuple[str, dict[str, Any]]:
    """``"base[k=v,k2=v2]"`` -> ``("base", {k: v, k2: v2})``; values are Python literals where
    they parse as one (numbers, booleans, tuples), strings otherwise. An id without brackets has
    no options."""
    if not task_id.endswith("]") or "[" not in task_id:
        return task_id, {}
    base, _, body = task_id[:-1].partition("[")
    parts, depth, start = [], 0, 0
    for i, char in enumerate(body):  # split at the commas outside parentheses
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in parts)):
        name, eq, text = item.partition("=")
        if not eq or not name.strip().isidentifier():
            raise Learn2RLError(
                f"task id {task_id!r}: options are written [name=value,...], got {item!r}"
            )
        try:
            value = ast.literal_eval(text.strip())
        except (ValueError, SyntaxError):
            value = text.strip()
        options[name.strip()] = value
    return base, options


def make(task_id: str, **overrides) -> TaskFamily:
    """Build the task family registered as ``task_id``; keyword arguments override its defaults.

    Options may also be written into the id, ``"control/cheetah-dir[backend=mjx]"``, so that a
    learner config (which names its task by id) can set them. Ids
    ``mix:<train>+...-><test>+...`` build an environment mixture (``tasks/mixture.py``);
    ``gymnax:<env id>`` a gymnax environment at its default parameters and
    ``dr:<base>[field=uniform(low,high),...]`` a domain randomization of a gymnax environment or
    a learn2rl family (``tasks/randomization.py``)."""
    if task_id.startswith("mix:"):
        from learn2rl.tasks import mixture  # imports the adapters, which import this module

        if overrides:
            raise Learn2RLError(f"{task_id}: a mixture id takes no overrides, got {overrides}")
        return mixture.from_id(task_id)
    if task_id.startswith(("gymnax:", "dr:")):
        from learn2rl.tasks import randomization

        if overrides:
            raise Learn2RLError(f"{task_id}: a gymnax: or dr: id takes no overrides ({overrides})")
        return randomization.from_id(task_id)
    base, options = parse_options(task_id)
    if base not in _REGISTRY:
        raise Learn2RLError(f"unknown task id {base!r}; known task ids: {', '.join(list_tasks())}")
    factory, defaults, _ = _REGISTRY[base]
    try:
        family = factory(**{**defaults, **options, **overrides})
    except TypeError as error:
        if not options:
            raise
        raise Learn2RLError(f"task id {task_id!r}: {error}") from None
    family.family_id = task_id
    return family


def list_tasks() -> list[str]:
    return sorted(_REGISTRY)


def describe(task_id: str) -> str:
    return _REGISTRY[task_id][2]


for _k in (2, 5, 10, 50):
    register(
        f"bandit/independent-{_k}arm",
        BernoulliBandit,
        f"{_k} independent Bernoulli arms, p ~ U[0,1]",
        num_arms=_k,
    )
for _k in (2, 5, 10):
    register(
        f"bandit/gaussian-{_k}arm",
        GaussianBandit,
        f"{_k} Gaussian arms, mean ~ N(0,1), reward noise N(0,1)",
        num_arms=_k,
    )
for _prior, _x in DEPENDENT_PRIORS.items():
    _what = "p2 ~ U[0,1]" if _x is None else f"p2 in {{{_x}, {1 - _x:g}}}"
    register(
        f"bandit/dependent-{_prior}",
        DependentBandit,
        f"2 dependent Bernoulli arms, p1 = 1 - p2, {_what} (Wang et al. 2016)",
        prior=_prior,
    )

# Families defined in modules of their own (Wang et al. 2016 suite) list their ids in a
# module-level ``TASKS`` table of ``(task_id, factory, description, defaults)``.
_FAMILY_MODULES = (
    "informative",
    "restless",
    "two_step",
    "harlow",
    "recurring_bandits",
    "navigation",
    "tabular_mdp",
    "maze",
    "control.point",
    "control.point_dir",
    "control.locomotion",
    "randomization",
    "obstacle_course",
)
for _module_name in _FAMILY_MODULES:
    _module = importlib.import_module(f"learn2rl.tasks.{_module_name}")
    for _task_id, _factory, _description, _defaults in _module.TASKS:
        register(_task_id, _factory, _description, **_defaults)
