"""POET: environments and their solvers co-evolved, with transfers between the pairs.

Wang, Lehman, Clune & Stanley 2019, "Paired Open-Ended Trailblazer (POET): Endlessly Generating
Increasingly Complex and Diverse Learning Environments and Their Solutions" (arXiv 1901.01753),
the original algorithm (not Enhanced POET), on the obstacle courses of
``learn2rl.tasks.obstacle_course`` (a point-mass runner; an environment is an encoding of
roughness, stump height, gap width and a terrain seed). One POET iteration, as in the official
``poet_algo.py`` (uber-research/poet):

1. **Mutation** (every ``mutation_interval`` iterations, not at 0): the pairs whose agent scores
   at least ``reproduction_threshold`` may reproduce. ``max_children`` times a parent is drawn
   uniformly among them and its encoding mutated (each knob moves by a random step, the terrain
   seed is drawn afresh). A child is dropped if an active environment has the same knobs, or if
   the *parent's* agent scores outside the minimal-criterion band ``[mc_lower, mc_upper]`` on it.
   The survivors are ranked by novelty: the mean distance of their knobs to the ``novelty_k``
   nearest encodings of the archive (every environment ever admitted). In that order each child
   gets the best agent among all active ones, directly or after one ES step on the child (the
   fine-tuned transfer); if that agent's score is inside the band again, the child is admitted
   with it and a fresh optimiser, up to ``max_admitted`` children. Beyond ``capacity`` active
   pairs the oldest is archived (leaves the active set; its encoding stays in the archive).
2. **ES step** of every active pair: OpenAI-ES (evosax ``Open_ES``: antithetic noise, centred
   ranks, Adam with L2 weight decay, decaying noise and step size) on its own environment; then
   one deterministic evaluation of the new mean, the pair's score.
3. **Transfer** (every ``transfer_interval`` iterations, iteration 0 included, when ``transfers``
   and more than one pair is active): every other active agent is evaluated on each target
   directly and after one ES step on the target; the best of these replaces the target's agent if
   it scores strictly higher than the target's own, and the target's optimiser is reset.

The course and the policy are deterministic, so an evaluation is one episode and "the same
evaluation seeds" is exact: a transfer never lowers a target's score. All pairs x population
rollouts of an iteration run in one jitted call (``vmap`` over pairs and over the population,
the population split over the devices and hosts: ``population_returns``);
the active set is a fixed number of slots (``capacity``) with a mask, so an iteration has one
shape and a chunk of iterations is one ``jit(lax.scan)``. Inactive slots are computed and ignored.

Environments are admitted with their parents' lineage lost (only encodings and agents are kept),
as in the original. The archive has room for every environment a run can admit. Each archive
entry records the encoding, the iteration it was admitted at, the score that admitted it and
whether its paired agent ever reached ``SOLVED_SCORE`` while active.

ES from scratch on one environment (the paper's control) is this learner with ``capacity=1``,
``mutation_interval=0`` and ``start`` set to that environment's encoding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from jax.flatten_util import ravel_pytree

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import (
    ConfigMixin,
    ShardedChunks,
    check_layer_sizes,
    check_non_negative,
    check_non_negative_ints,
    check_positive,
    check_positive_ints,
    check_seed,
)
from learn2rl.nets.mlp import MLP
from learn2rl.tasks.obstacle_course import CAPS, KNOBS, SOLVED_SCORE, CourseParams, ObstacleCourse
from learn2rl.types import Agent, TrialObs

NUM_KNOBS = len(KNOBS)  # roughness, stump_height, gap_width
_COMPILED: dict[tuple, dict[str, Any]] = {}  # see POET.__init__
# The score of an empty slot (finite: the runner rejects a non-finite train state); far below
# any episode return, so it never passes a threshold or the minimal criterion.
NO_SCORE = -1e9


@dataclass(frozen=True)
class Config(ConfigMixin):
    """POET settings. Defaults: the official code's thresholds, intervals and ES settings, with
    a CPU-scale population (128 instead of 512) and capacity (8 active pairs instead of 25)."""

    learner = "poet"

    capacity: int = 8
    """Active (environment, agent) pairs at most; beyond it the oldest is archived."""
    population_size: int = 128
    """ES perturbations per pair and iteration (antithetic pairs: even)."""
    hidden_sizes: tuple[int, ...] = (32, 32)
    """Hidden layers (tanh) of the deterministic policy; the output is a tanh of 2 actions."""
    episode_length: int = 400
    """Steps of an episode (0.05 s each) on a course."""
    num_updates: int = 1000
    """POET iterations."""
    updates_per_chunk: int = 25
    """Iterations per jitted chunk (logging and checkpoints happen between chunks)."""
    es_sigma: float = 0.1
    """Initial standard deviation of the ES noise."""
    sigma_decay: float = 0.999
    """Noise std multiplier per ES step (reset with the optimiser)."""
    sigma_limit: float = 0.01
    """Smallest noise std."""
    learning_rate: float = 0.01
    """Initial Adam step size of the ES."""
    lr_decay: float = 0.9999
    """Step-size multiplier per ES step (reset with the optimiser)."""
    lr_limit: float = 0.001
    """Smallest step size."""
    l2_coeff: float = 0.01
    """L2 weight decay added to the ES gradient."""
    transfers: bool = True
    """Transfer agents between pairs (False: the paper's ablation without transfers; a new
    environment then starts from its parent's agent)."""
    transfer_interval: int = 25
    """Iterations between transfer rounds (the official ``steps_before_transfer``)."""
    mutation_interval: int = 100
    """Iterations between mutation rounds (official: ``adjust_interval`` x
    ``steps_before_transfer`` = 4 x 25); 0 never mutates (ES on the start environment only)."""
    reproduction_threshold: float = 200.0
    """A pair may reproduce once its agent scores at least this."""
    mc_lower: float = 25.0
    """Minimal criterion: a child is admitted only if the agent's score on it is >= this..."""
    mc_upper: float = 340.0
    """... and <= this (neither too hard nor too easy)."""
    max_children: int = 8
    """Mutations tried per mutation round."""
    max_admitted: int = 1
    """Children admitted per mutation round at most."""
    novelty_k: int = 5
    """Nearest archive encodings averaged into a child's novelty."""
    roughness_step: float = 0.2
    """A mutation moves the roughness by U[-step, step] (rounded to 0.05 m)."""
    stump_step: float = 0.2
    """... the stump height by -step, 0 or +step ..."""
    gap_step: float = 0.4
    """... and the gap width by -step, 0 or +step (each knob clipped to its allowed range)."""
    start: tuple[float, ...] = (0.0, 0.0, 0.0)
    """Knobs (roughness, stump height, gap width) of the first environment (flat: POET's)."""
    start_seed: int = 0
    """Terrain seed of the first environment."""
    seed: int = 0
    """Random seed; the same config and seed give the same numbers."""

    def __post_init__(self):
        check_positive_ints(
            self,
            "capacity",
            "population_size",
            "episode_length",
            "num_updates",
            "updates_per_chunk",
            "transfer_interval",
            "max_children",
            "max_admitted",
            "novelty_k",
        )
        if self.population_size % 2:
            raise Learn2RLError(
                f"config.population_size must be even (antithetic pairs), got "
                f"{self.population_size!r}"
            )
        check_layer_sizes(self, "hidden_sizes")
        check_positive(self, "es_sigma", "sigma_limit", "learning_rate", "lr_limit")
        for name in ("sigma_decay", "lr_decay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise Learn2RLError(f"config.{name} must lie in (0, 1], got {value!r}")
            if not 0.0 < value <= 1.0:
                raise Learn2RLError(f"config.{name} must lie in (0, 1], got {value!r}")
        check_non_negative(self, "l2_coeff", "roughness_step", "stump_step", "gap_step")
        if not isinstance(self.transfers, bool):
            raise Learn2RLError(f"config.transfers must be true or false, got {self.transfers!r}")
        check_non_negative_ints(self, "mutation_interval")
        for name in ("reproduction_threshold", "mc_lower", "mc_upper"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise Learn2RLError(f"config.{name} must be a number, got {value!r}")
        if self.mc_lower > self.mc_upper:
            raise Learn2RLError(
                f"config.mc_lower ({self.mc_lower}) must not exceed config.mc_upper "
                f"({self.mc_upper})"
            )
        if len(self.start) != NUM_KNOBS:
            raise Learn2RLError(
                f"config.start must be {NUM_KNOBS} knobs ({', '.join(KNOBS)}), got {self.start!r}"
            )
        for name, value in zip(KNOBS, self.start, strict=True):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise Learn2RLError(f"config.start {name} must be a number, got {value!r}")
            if not 0.0 <= value <= CAPS[name]:
                raise Learn2RLError(
                    f"config.start {name} must lie in [0, {CAPS[name]:g}], got {value!r}"
                )
        seed = self.start_seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise Learn2RLError(f"config.start_seed must be an integer in [0, 2**31), got {seed!r}")
        check_seed(self)

    @property
    def archive_size(self) -> int:
        """Room for every environment a run can admit: the first one and ``max_admitted`` per
        mutation round."""
        rounds = 0 if self.mutation_interval == 0 else self.num_updates // self.mutation_interval
        return 1 + self.max_admitted * rounds


# --- pure pieces of the algorithm (tested on their own) ---------------------------------------
def knobs_of(encoding: CourseParams) -> jax.Array:
    """The knob vector ``[..., 3]`` (roughness, stump height, gap width) of encodings."""
    return jnp.stack([encoding.roughness, encoding.stump_height, encoding.gap_width], axis=-1)


def encoding_of(knobs: jax.Array, seed: jax.Array) -> CourseParams:
    return CourseParams(
        roughness=knobs[..., 0], stump_height=knobs[..., 1], gap_width=knobs[..., 2], seed=seed
    )


def passes_minimal_criterion(score: jax.Array, lower: float, upper: float) -> jax.Array:
    """POET's minimal criterion: neither too hard (below ``lower``) nor too easy (above
    ``upper``) for the agent that scored ``score``."""
    return (score >= lower) & (score <= upper)


def novelty(knobs: jax.Array, archive: jax.Array, count: jax.Array, k: int) -> jax.Array:
    """Mean Euclidean distance from ``knobs`` [3] to its ``k`` nearest among the first ``count``
    rows of ``archive`` [M, 3] (all of them when fewer than ``k``), as the official
    ``compute_novelty_vs_archive``."""
    distance = jnp.linalg.norm(archive - knobs, axis=-1)
    valid = jnp.arange(archive.shape[0]) < count
    distance = jnp.where(valid, distance, jnp.inf)
    k = min(k, archive.shape[0])
    nearest = -jax.lax.top_k(-distance, k)[0]  # ascending
    used = jnp.arange(k) < count
    return jnp.sum(jnp.where(used, nearest, 0.0)) / jnp.maximum(jnp.minimum(count, k), 1)


def mutate(key: jax.Array, knobs: jax.Array, config: Config) -> jax.Array:
    """A child's knobs: roughness + U[-step, step] (rounded to 0.05), stump height and gap
    width each moved by -step, 0 or +step; each clipped to its allowed range."""
    k_rough, k_stump, k_gap = jax.random.split(key, 3)
    caps = jnp.array([CAPS[name] for name in KNOBS], jnp.float32)
    rough = knobs[0] + jax.random.uniform(
        k_rough, (), jnp.float32, -config.roughness_step, config.roughness_step
    )
    rough = jnp.round(rough / 0.05) * 0.05
    moves = jnp.array([-1.0, 0.0, 1.0], jnp.float32)
    stump = knobs[1] + config.stump_step * jax.random.choice(k_stump, moves)
    gap = knobs[2] + config.gap_step * jax.random.choice(k_gap, moves)
    child = jnp.stack([rough, stump, gap])
    # Round to 0.01 m so that equal knobs compare equal (the dedup) whatever the float path.
    return jnp.clip(jnp.round(child * 100.0) / 100.0, 0.0, caps)


# --- state -------------------------------------------------------------------------------------
@struct.dataclass
class Pairs:
    """The ``capacity`` slots of (environment, agent) pairs; arrays with a leading slot axis."""

    knobs: jax.Array  # float32 [C, 3]
    seeds: jax.Array  # int32 [C]: terrain seeds
    active: jax.Array  # bool [C]
    es: Any  # evosax Open_ES state per slot (mean: the agent's flat parameters [C, D])
    score: jax.Array  # float32 [C]: the latest evaluation of the agent on its environment
    order: jax.Array  # int32 [C]: admission number (the oldest active has the smallest)
    archive_index: jax.Array  # int32 [C]: the slot's row in the archive


@struct.dataclass
class Archive:
    """Every environment ever admitted, in admission order (``count`` rows used)."""

    knobs: jax.Array  # float32 [M, 3]
    seeds: jax.Array  # int32 [M]
    admitted_at: jax.Array  # int32 [M]: the iteration (0 for the first environment)
    admission_score: jax.Array  # float32 [M]: the agent's score that admitted it
    solved: jax.Array  # bool [M]: its paired agent reached SOLVED_SCORE while active
    best_score: jax.Array  # float32 [M]: the best score its paired agent reached while active
    count: jax.Array  # int32


@struct.dataclass
class TrainState:
    pairs: Pairs
    archive: Archive
    rollouts: jax.Array  # int32: episodes run so far (ES, evaluations, transfers, mutations)
    transfers: jax.Array  # int32: agents replaced by a transfer so far
    update: jax.Array
    key: jax.Array

    @property
    def params(self) -> dict[str, Any]:
        """The agents' flat parameters ``[capacity, D]`` (``policy``) and which slots hold one."""
        return {"policy": self.pairs.es.mean, "active": self.pairs.active}


class POET:
    """POET on the obstacle courses (see the module text). A ``types.Learner``."""

    progress_metric = "score_mean"

    def __init__(self, config: Config, family: ObstacleCourse | None = None, devices=None):
        from evosax.algorithms import Open_ES

        self.config = config
        self.family = (
            ObstacleCourse(episode_length=config.episode_length) if family is None else family
        )
        if not isinstance(self.family, ObstacleCourse):
            raise Learn2RLError(
                f"POET runs on obstacle courses (ObstacleCourse), got {type(self.family).__name__}"
            )
        self.episodes_per_trial = 1
        self.network = MLP(self.family.action_size, tuple(config.hidden_sizes), "tanh")
        template = self.network.init(
            jax.random.PRNGKey(0), jnp.zeros((self.family.observation_size,), jnp.float32)
        )
        flat, self.unravel = ravel_pytree(template)
        self.num_params = int(flat.size)
        c = config

        def sigma(generation):
            return jnp.maximum(c.es_sigma * c.sigma_decay**generation, c.sigma_limit)

        def step_size(count):
            return jnp.maximum(c.learning_rate * c.lr_decay**count, c.lr_limit)

        optimizer = optax.chain(optax.add_decayed_weights(c.l2_coeff), optax.adam(step_size))
        self.strategy = Open_ES(
            population_size=c.population_size,
            solution=jnp.zeros((self.num_params,), jnp.float32),
            use_antithetic_sampling=True,
            optimizer=optimizer,
            std_schedule=sigma,
        )
        self.es_params = self.strategy.default_params
        # Learners whose configs differ only in what no compiled function reads (seeds, the
        # start course, the run length) share their compiled chunks: a run of five seeds, or
        # ES from scratch on several courses, compiles once. Their functions are the first
        # such learner's, which computes exactly what this one would.
        compiled = (
            config.replace(seed=0, start=(0.0, 0.0, 0.0), start_seed=0, num_updates=1),
            family,
        )
        shared = _COMPILED.setdefault(
            compiled, {"chunks": {}, "evaluate": jax.jit(jax.vmap(self.episode))}
        )
        # The ES population is the batch split over the devices (every host's in a multi-process
        # run): each device runs its share of a population's episodes, the returns are gathered
        # and every device takes the same ES step (``population_returns``).
        self.chunks = ShardedChunks(
            c.population_size,
            "members",
            devices,
            what="population_size",
            cache=shared["chunks"],
            cache_key=compiled,
        )
        self.devices, self.mesh = self.chunks.devices, self.chunks.mesh
        self._sharded = False  # True while the sharded chunk is being traced
        self._evaluate = shared["evaluate"]

    @property
    def steps_per_update(self) -> int:
        """Environment steps of the ES steps and evaluations of one iteration with every slot
        active (mutation and transfer rounds come on top)."""
        c = self.config
        return c.capacity * (c.population_size + 1) * c.episode_length

    # --- episodes --------------------------------------------------------------------------
    def policy(self, theta: jax.Array, obs: jax.Array) -> jax.Array:
        return jnp.tanh(self.network.apply(self.unravel(theta), obs))

    def episode(self, theta: jax.Array, encoding: CourseParams) -> jax.Array:
        """The return of the deterministic policy ``theta`` (flat) on one course."""
        family = self.family
        key = jax.random.PRNGKey(0)  # the course and the runner use no randomness
        obs, env_state = family.reset_env(key, encoding)

        def step(carry, _):
            obs, env_state, total, done = carry
            action = self.policy(theta, obs)
            obs, env_state, reward, terminated, _ = family.step_env(
                key, env_state, action, encoding
            )
            total = total + jnp.where(done, 0.0, reward)
            return (obs, env_state, total, done | terminated), None

        init = (obs, env_state, jnp.float32(0.0), jnp.asarray(False))
        (_, _, total, _), _ = jax.lax.scan(step, init, None, family.episode_length)
        return total

    def es_step(self, es_state, encoding: CourseParams, key: jax.Array):
        """One OpenAI-ES step of one agent on one course: ``(new ES state, mean return of the
        population)``."""
        k_ask, k_tell = jax.random.split(key)
        population, es_state = self.strategy.ask(k_ask, es_state, self.es_params)
        returns = self.population_returns(population, encoding)
        es_state, _ = self.strategy.tell(k_tell, population, -returns, es_state, self.es_params)
        return es_state, jnp.mean(returns)

    def population_returns(self, population: jax.Array, encoding: CourseParams) -> jax.Array:
        """The return of every member of ``population`` [P, D] on one course. Inside the
        sharded chunk each device runs its own contiguous share of the members and the returns
        are gathered in population order, the same numbers as one device computes alone."""
        episodes = jax.vmap(self.episode, in_axes=(0, None))
        shards = len(self.devices)
        if not self._sharded or shards == 1:
            return episodes(population, encoding)
        size = self.config.population_size // shards
        start = jax.lax.axis_index("members") * size
        mine = jax.lax.dynamic_slice_in_dim(population, start, size)
        return jax.lax.all_gather(episodes(mine, encoding), "members", tiled=True)

    def fresh_es(self, key: jax.Array, theta: jax.Array):
        """An ES state at ``theta`` with a fresh optimiser and the initial noise."""
        return self.strategy.init(key, theta, self.es_params)

    def proposal(self, theta: jax.Array, encoding: CourseParams, key: jax.Array):
        """The fine-tuned transfer: one ES step from ``theta`` on ``encoding`` with a fresh
        optimiser; ``(proposed theta, its score)``."""
        es_state, _ = self.es_step(self.fresh_es(key, theta), encoding, key)
        return es_state.mean, self.episode(es_state.mean, encoding)

    # --- state -----------------------------------------------------------------------------
    def init(self, seed: int | None = None) -> TrainState:
        c = self.config
        seed = c.seed if seed is None else seed
        k_theta, k_es, k_run = jax.random.split(jax.random.PRNGKey(seed), 3)
        cap, size = c.capacity, c.archive_size
        theta = ravel_pytree(
            self.network.init(k_theta, jnp.zeros((self.family.observation_size,), jnp.float32))
        )[0]
        thetas = jnp.zeros((cap, self.num_params), jnp.float32).at[0].set(theta)
        es = jax.vmap(self.fresh_es)(jax.random.split(k_es, cap), thetas)
        start = jnp.asarray(c.start, jnp.float32)
        knobs = jnp.zeros((cap, NUM_KNOBS), jnp.float32).at[0].set(start)
        seeds = jnp.zeros((cap,), jnp.int32).at[0].set(c.start_seed)
        active = jnp.zeros((cap,), bool).at[0].set(True)
        score0 = self.episode(theta, encoding_of(start, jnp.int32(c.start_seed)))
        pairs = Pairs(
            knobs=knobs,
            seeds=seeds,
            active=active,
            es=es,
            score=jnp.full((cap,), NO_SCORE, jnp.float32).at[0].set(score0),
            order=jnp.zeros((cap,), jnp.int32),
            archive_index=jnp.zeros((cap,), jnp.int32),
        )
        archive = Archive(
            knobs=jnp.zeros((size, NUM_KNOBS), jnp.float32).at[0].set(start),
            seeds=jnp.zeros((size,), jnp.int32).at[0].set(c.start_seed),
            admitted_at=jnp.zeros((size,), jnp.int32),
            admission_score=jnp.zeros((size,), jnp.float32).at[0].set(score0),
            solved=jnp.zeros((size,), bool),
            best_score=jnp.full((size,), NO_SCORE, jnp.float32).at[0].set(score0),
            count=jnp.int32(1),
        )
        state = TrainState(
            pairs=pairs,
            archive=archive,
            rollouts=jnp.int32(1),
            transfers=jnp.int32(0),
            update=jnp.int32(0),
            key=k_run,
        )
        return self.place(state)

    def place(self, state: TrainState) -> TrainState:
        return self.chunks.place(state)

    # --- one iteration ---------------------------------------------------------------------
    def _encodings(self, pairs: Pairs) -> CourseParams:
        return encoding_of(pairs.knobs, pairs.seeds)

    def _best_agents(self, thetas, encodings: CourseParams, usable, keys):
        """For each course of ``encodings`` [T]: the best of the agents ``thetas`` [S, D] with
        ``usable[s, t]``, each evaluated directly and after one ES step on the course (the
        direct and fine-tuned transfers; ``keys`` [S, T] drive the ES steps). Returns the
        scores [T] and parameters [T, D]; ties go to the lower source, direct before
        fine-tuned. A course no agent may serve scores -inf."""
        on_courses = jax.vmap(self.episode, in_axes=(None, 0))
        direct = jax.vmap(on_courses, in_axes=(0, None))(thetas, encodings)  # [S, T]
        proposals = jax.vmap(jax.vmap(self.proposal, in_axes=(None, 0, 0)), in_axes=(0, None, 0))
        proposed, proposed_score = proposals(thetas, encodings, keys)  # [S, T, D], [S, T]
        scores = jnp.concatenate([direct, proposed_score])  # [2S, T]
        scores = jnp.where(jnp.concatenate([usable, usable]), scores, -jnp.inf)
        best = jnp.argmax(scores, axis=0)
        candidates = jnp.concatenate([jnp.broadcast_to(thetas[:, None], proposed.shape), proposed])
        return jnp.max(scores, axis=0), candidates[best, jnp.arange(usable.shape[1])]

    def _transfer_round(self, state: TrainState, key: jax.Array) -> TrainState:
        """Direct and fine-tuned transfers between all active pairs (module text, step 3)."""
        pairs = state.pairs
        cap = self.config.capacity
        keys = jax.random.split(key, cap * cap).reshape(cap, cap, -1)  # [source, target]
        usable = pairs.active[:, None] & pairs.active[None, :] & ~jnp.eye(cap, dtype=bool)
        best_score, best_theta = self._best_agents(
            pairs.es.mean, self._encodings(pairs), usable, keys
        )
        replace = pairs.active & (best_score > pairs.score)
        fresh = jax.vmap(self.fresh_es)(
            jax.random.split(jax.random.fold_in(key, 1), cap), best_theta
        )
        es = jax.tree.map(
            lambda new, old: jnp.where(replace.reshape((-1,) + (1,) * (old.ndim - 1)), new, old),
            fresh,
            pairs.es,
        )
        pairs = pairs.replace(es=es, score=jnp.where(replace, best_score, pairs.score))
        n = jnp.sum(pairs.active).astype(jnp.int32)
        return state.replace(
            pairs=pairs,
            transfers=state.transfers + jnp.sum(replace).astype(jnp.int32),
            rollouts=state.rollouts + n * (n - 1) * (self.config.population_size + 2),
        )

    def _mutation_round(self, state: TrainState, key: jax.Array) -> TrainState:
        """Reproduction, minimal criterion, novelty ranking and admission (module text, step 1)."""
        c = self.config
        pairs, archive = state.pairs, state.archive
        cap, kids = c.capacity, c.max_children
        k_parent, k_mutate, k_seed, k_transfer, k_admit = jax.random.split(key, 5)
        eligible = pairs.active & (pairs.score >= c.reproduction_threshold)
        logits = jnp.where(eligible, 0.0, -jnp.inf)
        parents = jax.random.categorical(k_parent, logits, shape=(kids,))
        parents = jnp.where(jnp.any(eligible), parents, 0)
        child_knobs = jax.vmap(mutate, in_axes=(0, 0, None))(
            jax.random.split(k_mutate, kids), pairs.knobs[parents], c
        )
        child_seeds = jax.random.randint(k_seed, (kids,), 0, 2**31 - 1, dtype=jnp.int32)
        children = encoding_of(child_knobs, child_seeds)
        parent_score = jax.vmap(self.episode)(pairs.es.mean[parents], children)
        child_novelty = jax.vmap(novelty, in_axes=(0, None, None, None))(
            child_knobs, archive.knobs, archive.count, c.novelty_k
        )
        candidates = (
            jnp.any(eligible)
            & passes_minimal_criterion(parent_score, c.mc_lower, c.mc_upper)
            & ~self._duplicates(child_knobs, pairs)
        )
        # The best agent for each child: every active agent, directly or after one ES step.
        thetas = pairs.es.mean
        if c.transfers:
            keys = jax.random.split(k_transfer, kids * cap).reshape(kids, cap, -1)
            usable = jnp.broadcast_to(pairs.active[:, None], (cap, kids))
            child_score, child_theta = self._best_agents(
                thetas, children, usable, keys.transpose(1, 0, 2)
            )
        else:
            # Without transfers a child starts from its parent's agent (the ablation), whose
            # score on it the first minimal-criterion check already measured.
            child_score, child_theta = parent_score, thetas[parents]
        admissible = candidates & passes_minimal_criterion(child_score, c.mc_lower, c.mc_upper)
        ranking = jnp.argsort(-jnp.where(candidates, child_novelty, -jnp.inf))
        num = jnp.sum(pairs.active)
        n_sources = num * (2 + c.population_size) if c.transfers else jnp.int32(0)
        rollouts = kids + jnp.sum(candidates) * n_sources

        def admit_next(i, carry):
            state, admitted = carry
            child = ranking[i]
            ok = (
                admissible[child]
                & (admitted < c.max_admitted)
                & ~self._duplicates(child_knobs[child][None], state.pairs)[0]
            )
            admitted_state = self._admit(
                state,
                child_knobs[child],
                child_seeds[child],
                child_theta[child],
                child_score[child],
                jax.random.fold_in(k_admit, i),
            )
            state = jax.tree.map(lambda a, b: jnp.where(ok, a, b), admitted_state, state)
            return state, admitted + ok.astype(jnp.int32)

        state = state.replace(rollouts=state.rollouts + rollouts.astype(jnp.int32))
        state, _ = jax.lax.fori_loop(0, kids, admit_next, (state, jnp.int32(0)))
        return state

    @staticmethod
    def _duplicates(knobs: jax.Array, pairs: Pairs) -> jax.Array:
        """Whether each of ``knobs`` [K, 3] equals an active environment's knobs (the official
        dedup by environment name)."""
        same = jnp.all(jnp.abs(knobs[:, None] - pairs.knobs[None]) < 1e-4, axis=-1)  # [K, C]
        return jnp.any(same & pairs.active[None], axis=1)

    def _admit(self, state: TrainState, knobs, seed, theta, score, key) -> TrainState:
        """Put a child into the first free slot, or archive the oldest active pair for it."""
        pairs, archive = state.pairs, state.archive
        big = jnp.iinfo(jnp.int32).max
        slot = jnp.argmin(jnp.where(pairs.active, pairs.order, -big + jnp.arange(pairs.order.size)))
        row = archive.count
        es = jax.tree.map(
            lambda all_, one: all_.at[slot].set(one), pairs.es, self.fresh_es(key, theta)
        )
        pairs = pairs.replace(
            knobs=pairs.knobs.at[slot].set(knobs),
            seeds=pairs.seeds.at[slot].set(seed),
            active=pairs.active.at[slot].set(True),
            es=es,
            score=pairs.score.at[slot].set(score),
            order=pairs.order.at[slot].set(row),
            archive_index=pairs.archive_index.at[slot].set(row),
        )
        # A run never admits more than ``archive_size`` environments; rows past it are dropped.
        archive = archive.replace(
            knobs=archive.knobs.at[row].set(knobs, mode="drop"),
            seeds=archive.seeds.at[row].set(seed, mode="drop"),
            admitted_at=archive.admitted_at.at[row].set(state.update, mode="drop"),
            admission_score=archive.admission_score.at[row].set(score, mode="drop"),
            best_score=archive.best_score.at[row].set(score, mode="drop"),
            solved=archive.solved.at[row].set(score >= SOLVED_SCORE, mode="drop"),
            count=jnp.minimum(row + 1, archive.knobs.shape[0]),
        )
        return state.replace(pairs=pairs, archive=archive)

    def _update(self, state: TrainState, _):
        c = self.config
        u = state.update
        key = jax.random.fold_in(state.key, u)
        k_mutate, k_es, k_transfer = jax.random.split(key, 3)
        if c.mutation_interval > 0:
            due = (u > 0) & (u % c.mutation_interval == 0)
            state = jax.lax.cond(due, self._mutation_round, lambda s, _: s, state, k_mutate)
        pairs = state.pairs
        es, population_return = jax.vmap(self.es_step)(
            pairs.es, self._encodings(pairs), jax.random.split(k_es, c.capacity)
        )
        score = jax.vmap(self.episode)(es.mean, self._encodings(pairs))
        score = jnp.where(pairs.active, score, NO_SCORE)
        num = jnp.sum(pairs.active).astype(jnp.int32)
        state = state.replace(
            pairs=pairs.replace(es=es, score=score),
            rollouts=state.rollouts + num * (c.population_size + 1),
        )
        if c.transfers and c.capacity > 1:
            due = (u % c.transfer_interval == 0) & (num > 1)
            state = jax.lax.cond(due, self._transfer_round, lambda s, _: s, state, k_transfer)
        state = self._record(state)
        pairs, archive = state.pairs, state.archive
        active_score = jnp.where(pairs.active, pairs.score, jnp.nan)
        metrics = {
            "score_mean": jnp.nanmean(active_score),
            "score_max": jnp.nanmax(active_score),
            "score_min": jnp.nanmin(active_score),
            "population_return": jnp.sum(jnp.where(pairs.active, population_return, 0.0)) / num,
            "active": jnp.sum(pairs.active).astype(jnp.int32),
            "environments": archive.count,
            "solved": jnp.sum(archive.solved).astype(jnp.int32),
            "transfers": state.transfers,
            "rollouts": state.rollouts,
        }
        return state.replace(update=u + 1), metrics

    @staticmethod
    def _record(state: TrainState) -> TrainState:
        """Each active pair's best score and "solved" flag into its archive row."""
        pairs, archive = state.pairs, state.archive
        rows = jnp.where(pairs.active, pairs.archive_index, archive.knobs.shape[0])  # dropped
        best = archive.best_score.at[rows].max(pairs.score, mode="drop")
        reached = (pairs.score >= SOLVED_SCORE).astype(jnp.int32)
        solved = archive.solved.astype(jnp.int32).at[rows].max(reached, mode="drop") > 0
        return state.replace(archive=archive.replace(best_score=best, solved=solved))

    def _local_updates(self, state: TrainState, _members: jax.Array, *, num_updates: int):
        """The chunk on one device (its population share comes from ``axis_index``)."""
        self._sharded = True
        try:
            return jax.lax.scan(self._update, state, None, num_updates)
        finally:
            self._sharded = False

    def train_chunk(self, state: TrainState, num_updates: int):
        return self.chunks.run(self._local_updates, state, num_updates)

    def train_members(self, states: TrainState, num_updates: int):
        """Several train states (a leading member axis, e.g. seeds) at once (``learn2rl
        sweep``)."""
        return self.chunks.run(self._local_updates, states, num_updates, members=True)

    # --- evaluation --------------------------------------------------------------------------
    def evaluate(self, thetas: jax.Array, encodings: CourseParams) -> np.ndarray:
        """The return of each policy ``thetas[i]`` on course ``encodings[i]`` (batched)."""
        return np.asarray(self._evaluate(thetas, encodings))

    def environments(self, state: TrainState) -> dict[str, np.ndarray]:
        """The archive as numpy arrays (``count`` rows): every environment the run admitted."""
        archive = jax.device_get(state.archive)
        n = int(archive.count)
        return {
            "knobs": np.asarray(archive.knobs[:n]),
            "seeds": np.asarray(archive.seeds[:n]),
            "admitted_at": np.asarray(archive.admitted_at[:n]),
            "admission_score": np.asarray(archive.admission_score[:n]),
            "best_score": np.asarray(archive.best_score[:n]),
            "solved": np.asarray(archive.solved[:n]),
        }

    def agent(self, params: dict[str, Any], name: str | None = None, pair: int = 0) -> Agent:
        """The deterministic policy of slot ``pair`` as an ``Agent`` for any obstacle course."""
        if not 0 <= pair < self.config.capacity:
            raise Learn2RLError(f"pair must lie in [0, {self.config.capacity}), got {pair!r}")
        theta = jnp.asarray(params["policy"])[pair]

        def init(key, task_params):
            return jnp.zeros((), jnp.float32)

        def act(key, carry, trial_obs: TrialObs):
            return self.policy(theta, trial_obs.obs), carry

        return Agent(name=name or "poet", init=init, act=act)
