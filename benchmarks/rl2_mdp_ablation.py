"""What each element of the n = 10 RL^2 MDP cell buys (Duan et al. 2016, Table 2): an ablation.

    python benchmarks/rl2_mdp_ablation.py --updates 1500 --seeds 0 1 2 --out runs/rl2-ablation

Every row trains the settings of the n = 10 cell (``experiments.duan2016_mdps.rl2_config(10)``)
with one element removed, for ``--updates`` updates (the schedules stretch with it, so every row
has the same budget), once per training seed, and scores each trained agent on the same
``--tasks`` held-out MDPs with the experiments' evaluation key, sampling its policy and acting
greedily (the cell picks one of the two per seed on training MDPs; both are shown here). The
table gives the mean over seeds with its 95% t interval, and each seed's value.

Each run lives in ``OUT/VARIANT/seed-S``: a finished run is kept (its score in ``score.json``) and
an interrupted one resumes from its checkpoint when the command runs again with the same
settings, so a long ablation can be spread over several runs of the command. ``--variants``
picks rows by name and ``--set FIELD=VALUE`` changes a setting of every row (e.g. a smaller
network for a smoke test).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from learn2rl.devices import use_cpu_cores

use_cpu_cores()

import numpy as np  # noqa: E402

from learn2rl import checkpoint, runner  # noqa: E402
from learn2rl.analysis.seeds import mean_and_interval  # noqa: E402
from learn2rl.errors import Learn2RLError  # noqa: E402
from learn2rl.experiments.common import compare  # noqa: E402
from learn2rl.experiments.duan2016_mdps import rl2_config  # noqa: E402
from learn2rl.learners.base import parse_overrides  # noqa: E402
from learn2rl.learners.rl2 import Config  # noqa: E402
from learn2rl.report import machine_line  # noqa: E402

NUM_EPISODES = 10

# Row name -> the settings that remove one element of the cell (the first row removes nothing).
VARIANTS: dict[str, dict] = {
    "cell": {},
    "no-state-heads": {"state_heads": False},
    "no-decoder": {"reward_decoder_coef": 0.0},
    "observed-decoder": {"reward_decoder_target": "observed"},
    "lambda-1": {"gae_lambda": 1.0},
    "fixed-gamma-0.5": {"final_gamma": None},
}
DESCRIPTIONS = {
    "cell": "the cell (state heads, expected-reward decoder x30, lambda 0.6, gamma 0.5 -> 0.95)",
    "no-state-heads": "linear heads instead of state-indexed ones",
    "no-decoder": "no reward decoder",
    "observed-decoder": "decoder of the observed mean rewards instead of the expected ones",
    "lambda-1": "GAE lambda 1 instead of 0.6",
    "fixed-gamma-0.5": "discount fixed at 0.5, not annealed to 0.95",
}


def variant_config(name: str, updates: int, overrides: dict) -> Config:
    config = rl2_config(NUM_EPISODES, quick=False).replace(**VARIANTS[name], **overrides)
    chunk = 100 if updates % 100 == 0 else updates
    return config.replace(num_updates=updates, updates_per_chunk=chunk)


def run_one(config: Config, seed: int, directory: Path, num_tasks: int) -> dict:
    """Train (or resume, or reuse) one seed and score it; the score is cached in score.json."""
    config = config.replace(seed=seed)
    cache = directory / "score.json"
    if cache.exists():
        saved = json.loads(cache.read_text())
        if saved["config"] == config.to_dict() and saved["tasks"] == num_tasks:
            return saved
    checkpoint_dir = directory / runner.CHECKPOINT_DIR
    found = checkpoint.exists(checkpoint_dir)  # a run to continue or reuse
    learner, state = runner.train("rl2", config, directory, resume=found, progress=False)
    meta = checkpoint.load_meta(checkpoint_dir)
    agents = [learner.agent(state.params, greedy=g, name=m) for g, m in ((0, "s"), (1, "g"))]
    sampled, greedy = compare(agents, learner.family, NUM_EPISODES, num_tasks)
    result = {
        "config": config.to_dict(),
        "tasks": num_tasks,
        "sampled": float(np.mean(sampled.total_rewards)),
        "greedy": float(np.mean(greedy.total_rewards)),
        "train_seconds": float(meta.get("train_seconds", 0.0)),
    }
    cache.write_text(json.dumps(result, indent=1))
    return result


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.1f}"
    mean, half = mean_and_interval(values)
    return f"{mean:.1f} ± {half:.1f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="directory of the runs (kept, resumable)")
    parser.add_argument("--updates", type=int, default=1500, help="RL^2 updates per run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    parser.add_argument("--tasks", type=int, default=1000, help="held-out MDPs per agent")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument(
        "--set", action="append", default=[], metavar="FIELD=VALUE", help="change every row"
    )
    args = parser.parse_args(argv)
    if args.updates <= 0 or args.tasks <= 1 or any(s < 0 for s in args.seeds):
        parser.error("--updates must be positive, --tasks at least 2, --seeds non-negative")
    try:
        overrides = parse_overrides(Config, args.set)
    except Learn2RLError as error:
        parser.error(str(error))
    print(f"RL^2 n = {NUM_EPISODES} cell, one element removed per row; {args.updates} updates, "
          f"seeds {args.seeds}, {args.tasks} held-out MDPs\n")  # fmt: skip
    print("| row | sampled | greedy | greedy per seed | training s (sum) |\n|---|---|---|---|---|")
    for name in args.variants:
        config = variant_config(name, args.updates, overrides)
        tic = time.perf_counter()
        results = [
            run_one(config, seed, Path(args.out) / name / f"seed-{seed}", args.tasks)
            for seed in args.seeds
        ]
        per_seed = ", ".join(f"{r['greedy']:.1f}" for r in results)
        seconds = sum(r["train_seconds"] for r in results)
        print(
            f"| {DESCRIPTIONS[name]} | {summary([r['sampled'] for r in results])} | "
            f"{summary([r['greedy'] for r in results])} | {per_seed} | {seconds:.0f} |",
            flush=True,
        )
        print(f"  ({name}: {time.perf_counter() - tic:.0f} s in this run)", file=sys.stderr)
    print("\n" + machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
