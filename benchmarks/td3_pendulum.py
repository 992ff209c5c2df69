"""TD3 and DDPG on gymnax Pendulum-v1 against the published learning curves.

    python benchmarks/td3_pendulum.py                  # td3 and ddpg, 3 seeds, 20k steps
    python benchmarks/td3_pendulum.py --seeds 5 --learners td3

Published reference: TD3 (Fujimoto et al. 2018) and its reimplementations reach a return of about
-150 to -200 on Pendulum within about 20k environment steps (Pendulum's best policies score about
-150 on average over random starts). Each row is one learner at one point of training: the
deterministic evaluation return (``eval_return``, 5 episodes per update) as a mean and t interval
over training seeds, and the training wall time. Learners use their default configs
(``learn2rl train td3``).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--learners", nargs="+", default=["td3", "ddpg"])
    parser.add_argument("--updates", type=int, default=20, help="updates of 1000 steps each")
    args = parser.parse_args()

    import jax

    from learn2rl import learners
    from learn2rl.analysis.seeds import mean_and_interval
    from learn2rl.report import machine_line

    marks = sorted({max(1, args.updates // 4) * k for k in (1, 2, 3)} | {args.updates})
    print(f"{'learner':8} {'steps':>7} {'eval return (mean ± t95 over seeds)':>38} {'seconds':>8}")
    for name in args.learners:
        config_cls, learner_cls = learners.get(name)
        curves, seconds = [], []
        for seed in range(args.seeds):
            config = config_cls(num_updates=args.updates, seed=seed)
            learner = learner_cls(config)
            state = learner.init()
            tic = time.perf_counter()
            state, metrics = learner.train_chunk(state, args.updates)
            curve = np.asarray(jax.block_until_ready(metrics["eval_return"]))
            seconds.append(time.perf_counter() - tic)
            curves.append(curve)
        curves = np.array(curves)
        steps = config.steps_per_update
        for mark in marks:
            mean, half = mean_and_interval(curves[:, mark - 1])
            print(
                f"{name:8} {mark * steps:7d} {mean:26.1f} ± {half:<9.1f} {np.median(seconds):8.1f}"
            )
    print(machine_line())


if __name__ == "__main__":
    main()
