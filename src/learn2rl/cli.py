"""The ``learn2rl`` command: list | train | evaluate | reproduce | demo | sweep.

Bad input (unknown ids, values out of range, a corrupt or mismatched checkpoint) ends with a
one-line
``error: ...`` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated  # noqa: UP035  (typer needs Optional on Python 3.10)

import typer

from learn2rl.errors import Learn2RLError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Meta-reinforcement learning in JAX.",
)

OutOption = Annotated[
    Path, typer.Option("--out", help="Directory for everything the command writes.")
]
SeedOption = Annotated[
    int | None,  # noqa: UP007
    typer.Option(help="Training seed (the same config and seed give the same numbers)."),
]
SetOption = Annotated[
    list[str] | None,  # noqa: UP007
    typer.Option(
        "--set", help="Any config field, FIELD=VALUE (repeatable), e.g. --set num_tasks=512."
    ),
]
ConfigOption = Annotated[
    Path | None,  # noqa: UP007
    typer.Option(
        "--config",
        help="A JSON or TOML file of config fields (a run's results.json or checkpoint meta.json "
        "works too).",
    ),
]

CoordinatorOption = Annotated[
    str | None,  # noqa: UP007
    typer.Option(
        envvar="LEARN2RL_COORDINATOR",
        help="HOST:PORT of process 0, for a run over several processes or hosts.",
    ),
]
NumProcessesOption = Annotated[
    int | None,  # noqa: UP007
    typer.Option(envvar="LEARN2RL_NUM_PROCESSES", help="How many processes share the run."),
]
ProcessIdOption = Annotated[
    int | None,  # noqa: UP007
    typer.Option(envvar="LEARN2RL_PROCESS_ID", help="This process's index, 0 .. N-1."),
]
PeerTimeoutOption = Annotated[
    float,
    typer.Option(
        envvar="LEARN2RL_PEER_TIMEOUT",
        help="Seconds without a sign of life from another process before this one stops.",
    ),
]


def _join(coordinator, num_processes, process_id, peer_timeout) -> bool:
    """Join a multi-process run if the options ask for one; True in the process that writes."""
    from learn2rl import distributed

    distributed.join(distributed.parse(coordinator, num_processes, process_id), peer_timeout)
    return distributed.is_primary()


def _check_task(config) -> None:
    """An unknown task id fails here, before any compilation (hochreiter2001 has no task)."""
    from learn2rl import tasks

    if hasattr(config, "task"):
        tasks.make(config.task)


def _version(value: bool):
    if value:
        from learn2rl.version import __version__

        print(f"learn2rl {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
):
    """Meta-reinforcement learning in JAX."""


def _console():
    from rich.console import Console

    return Console(stderr=False)


@app.command("list")
def list_command():
    """List task families, learners, baselines and experiments."""
    from learn2rl import baselines, learners, tasks
    from learn2rl.experiments import list_experiments

    console = _console()
    console.print("[bold]tasks[/bold]")
    for task_id in tasks.list_tasks():
        console.print(f"  {task_id:<28} {tasks.describe(task_id)}")
    composed = (
        ("gymnax:<env>", "any gymnax environment at its default parameters"),
        ("dr:<base>[field=uniform(a,b),...]", "domain randomization of a gymnax env or a family"),
        ("mix:<env>+<env>-><env>", "tasks = which environment (train -> test environments)"),
    )
    for pattern, what in composed:
        console.print(f"  {pattern:<28} {what}", highlight=False, markup=False)
    console.print("[bold]learners[/bold]")
    for name in learners.list_learners():
        console.print(f"  {name:<28} {learners.describe(name)}")
    console.print("[bold]baselines[/bold] (learn2rl evaluate --baselines), per kind of task family")
    for kind, rows in baselines.applicable_by_kind():
        console.print(f"  {kind}")
        groups: dict[tuple[str, ...], list[str]] = {}
        for task_id, names in rows:
            groups.setdefault(tuple(names), []).append(task_id)
        for names, task_ids in groups.items():
            console.print(f"    {', '.join(task_ids)}: {', '.join(names)}", highlight=False)
    console.print("[bold]experiments[/bold] (learn2rl reproduce NAME)")
    for name, description in list_experiments().items():
        console.print(f"  {name:<28} {description}")


@app.command()
def train(
    out: OutOption,
    learner: Annotated[str, typer.Option(help="Learner id (learn2rl list).")] = "rl2",
    task: Annotated[str | None, typer.Option(help="Task family id.")] = None,  # noqa: UP007
    updates: Annotated[int | None, typer.Option(help="Number of updates.")] = None,  # noqa: UP007
    seed: SeedOption = None,
    set_: SetOption = None,
    config: ConfigOption = None,
    resume: Annotated[bool, typer.Option(help="Continue the run saved in --out.")] = False,
    keep: Annotated[int, typer.Option(help="How many of the newest checkpoints to keep.")] = 3,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    coordinator: CoordinatorOption = None,
    num_processes: NumProcessesOption = None,
    process_id: ProcessIdOption = None,
    peer_timeout: PeerTimeoutOption = 30.0,
):
    """Meta-train a learner; writes checkpoint/, metrics.jsonl, tensorboard/ and training.png.

    Settings: the learner's config defaults, then --config FILE, then --set FIELD=VALUE, then
    --task / --updates / --seed. `learn2rl train --learner NAME --help` lists NAME's fields.
    Several processes or hosts: run the same command in each with --coordinator HOST:PORT (of
    process 0), --num-processes N and --process-id I; --out must be a shared directory.
    """
    primary = _join(coordinator, num_processes, process_id, peer_timeout)
    from learn2rl import learners, runner
    from learn2rl.learners.base import build_config
    from learn2rl.logging import read_metrics
    from learn2rl.plots import plot_training

    config_cls, _ = learners.get(learner)
    config = build_config(config_cls, None, config, set_, task=task, num_updates=updates, seed=seed)
    _check_task(config)
    console = _console()
    if keep <= 0:
        raise Learn2RLError(f"--keep must be positive, got {keep}")
    trained, state = runner.train(
        learner, config, out, resume=resume, progress=progress, console=console, keep=keep
    )
    if not primary:
        return
    plot_training(
        read_metrics(out / "metrics.jsonl"), out / "training.png", trained.progress_metric
    )
    console.print(
        f"trained {int(state.update)} updates; checkpoint in {out / runner.CHECKPOINT_DIR}"
    )


@app.command()
def evaluate(
    checkpoint: Annotated[Path, typer.Option(help="A run directory or its checkpoint/ directory.")],
    out: OutOption,
    num_tasks: Annotated[int, typer.Option(help="Held-out test tasks.")] = 1000,
    baselines_: Annotated[
        str | None,
        typer.Option(  # noqa: UP007
            "--baselines", help="Comma-separated baseline ids; default: all that apply."
        ),
    ] = None,
):
    """Evaluate a checkpoint beside classical baselines on held-out tasks."""
    from learn2rl import runner
    from learn2rl.experiments.common import baseline_agents, compare, write_outputs

    if num_tasks <= 0:
        raise Learn2RLError(f"--num-tasks must be positive, got {num_tasks}")
    directory = (
        checkpoint / runner.CHECKPOINT_DIR
        if (checkpoint / runner.CHECKPOINT_DIR).is_dir()
        else checkpoint
    )
    learner, state, meta = runner.load_learner(directory)
    if not hasattr(learner, "family"):
        raise Learn2RLError(
            f"{meta['learner']} learns no task family, so there are no held-out tasks to evaluate "
            "it on (its metrics.jsonl holds its evaluation returns; `learn2rl list` names the "
            "experiment that compares it)"
        )
    family = learner.family
    names = None if baselines_ is None else [b.strip() for b in baselines_.split(",") if b.strip()]
    # RL^2 runs the trial it was trained on; a gradient learner (MAML, Reptile, MAESN) the
    # episodes of one meta-training task: a batch before and after each inner step.
    num_episodes = learner.episodes_per_trial
    agents = [learner.agent(state.params, name=meta["learner"])]
    agents += baseline_agents(family, num_episodes, names)
    console = _console()
    results = compare(agents, family, num_episodes, num_tasks, console=console)
    write_outputs(
        out,
        results,
        f"{meta['learner']} on {family.family_id}",
        f"Checkpoint {directory} (update {meta['update']}) on {num_tasks} held-out tasks.",
        extra_json={
            "learner": meta["learner"],
            "config": meta["config"],
            "checkpoint_update": meta["update"],
            "training_provenance": meta.get("provenance"),
        },
        console=console,
    )
    console.print(f"wrote {out / 'report.md'}, {out / 'results.json'}, {out / 'regret.png'}")


@app.command()
def reproduce(
    name: Annotated[str, typer.Argument(help="Experiment id (learn2rl list).")],
    out: OutOption = Path("runs/reproduce"),
    quick: Annotated[bool, typer.Option(help="The laptop-sized variant.")] = False,
    seeds: Annotated[
        int | None,  # noqa: UP007
        typer.Option(help="Training seeds per learner (default: the experiment's, 3 for most)."),
    ] = None,
    seed: SeedOption = None,
    set_: SetOption = None,
    cells: Annotated[
        str | None,  # noqa: UP007
        typer.Option(help="Only these cells of a table, comma-separated (e.g. n10,n25)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
):
    """Run a named paper experiment and write its report.

    --set FIELD=VALUE changes that field of every learner config in the experiment that has it;
    --seed sets the first training seed (--seed 3 --seeds 2 trains seeds 3 and 4, into
    seed-3/ and seed-4/ of each learner, so seeds run apart share one --out); --cells runs only
    those cells of a table (the report then covers the cells run so far with the same settings).
    """
    from learn2rl.experiments import get_experiment, takes_options

    experiment = get_experiment(name)
    chosen = [c.strip() for c in cells.split(",") if c.strip()] if cells is not None else []
    if cells is not None and not chosen:
        raise Learn2RLError("--cells needs at least one cell id, e.g. --cells n10")
    options = {"seeds": seeds, "seed": seed, "overrides": list(set_ or []), "cells": chosen}
    given = {k: v for k, v in options.items() if v is not None and v != []}
    if given and not takes_options(name):
        flags = ", ".join("--set" if k == "overrides" else f"--{k}" for k in given)
        raise Learn2RLError(
            f"{name} does not run on the experiment pipeline yet, so it takes no {flags}"
        )
    experiment(out=out, quick=quick, progress=progress, console=_console(), **given)


@app.command()
def demo(
    out: OutOption = Path("runs/demo"),
    quick: Annotated[
        bool, typer.Option(help="A 30-second version (it does not reach the Bayes-optimal limit).")
    ] = False,
    num_test_tasks: Annotated[int, typer.Option(help="Held-out test tasks.")] = 10_000,
    seed: SeedOption = None,
    set_: SetOption = None,
    config: ConfigOption = None,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted demo in --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
):
    """The main job: RL^2 on 2-armed bandits (100 pulls) against every bandit baseline.

    --config / --set / --seed change the RL^2 config (`learn2rl train --help` lists its fields).
    """
    from learn2rl.experiments import demo as demo_experiment
    from learn2rl.learners.base import build_config
    from learn2rl.learners.rl2 import Config

    if num_test_tasks <= 0:
        raise Learn2RLError(f"--num-test-tasks must be positive, got {num_test_tasks}")
    base = demo_experiment.QUICK_CONFIG if quick else demo_experiment.DEMO_CONFIG
    settings = build_config(Config, base, config, set_, seed=seed)
    console = _console()
    demo_experiment.run(
        out,
        quick=quick,
        num_test_tasks=num_test_tasks,
        progress=progress,
        console=console,
        config=settings,
        resume=resume,
    )
    console.print(f"wrote {out}/report.md, results.json, regret.png, training.png, checkpoint/")


@app.command()
def sweep(
    out: OutOption = Path("runs/sweep"),
    learner: Annotated[str, typer.Option(help="Learner id (learn2rl list).")] = "rl2",
    demo: Annotated[
        bool, typer.Option("--demo", help="Start from the demo's RL^2 config (learner rl2).")
    ] = False,
    task: Annotated[str | None, typer.Option(help="Task family id.")] = None,  # noqa: UP007
    updates: Annotated[int | None, typer.Option(help="Number of updates.")] = None,  # noqa: UP007
    config: ConfigOption = None,
    set_: Annotated[
        list[str] | None,  # noqa: UP007
        typer.Option(
            "--set",
            help="FIELD=V1,V2,... (repeatable): the grid is every combination; a tuple field "
            "separates its values with /, e.g. hidden_sizes=64,64/128,128.",
        ),
    ] = None,
    seeds: Annotated[int, typer.Option(help="Training seeds per setting.")] = 3,
    seed: Annotated[int, typer.Option(help="The first seed (seeds are seed, seed+1, ...).")] = 0,
    queue: Annotated[
        bool, typer.Option("--queue", help="Train seeds one after another, never side by side.")
    ] = False,
    num_test_tasks: Annotated[
        int, typer.Option(help="Held-out tasks per trained run (0: none).")
    ] = 1000,
    resume: Annotated[bool, typer.Option(help="Continue the sweep saved in --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    coordinator: CoordinatorOption = None,
    num_processes: NumProcessesOption = None,
    process_id: ProcessIdOption = None,
    peer_timeout: PeerTimeoutOption = 30.0,
):
    """Train a learner over seeds and a grid of config values; one report with intervals.

    The seeds of a setting train side by side in one compiled program (every learner; --queue
    trains them one after another).
    Writes report.md and results.json (every run's numbers) in --out, and a run directory per
    setting.
    """
    _join(coordinator, num_processes, process_id, peer_timeout)
    from learn2rl import learners
    from learn2rl import sweep as sweeps
    from learn2rl.learners.base import build_config

    config_cls, _ = learners.get(learner)
    base = None
    if demo:
        if learner != "rl2":
            raise Learn2RLError(f"--demo starts from the demo's RL^2 config; not for {learner}")
        from learn2rl.experiments.demo import DEMO_CONFIG

        base = DEMO_CONFIG
    settings = sweeps.parse_grid(config_cls, list(set_ or []))
    base = build_config(config_cls, base, config, None, task=task, num_updates=updates, seed=seed)
    _check_task(base)
    sweeps.run(
        learner,
        base,
        settings,
        seeds,
        seed,
        out,
        queue=queue,
        num_test_tasks=num_test_tasks,
        resume=resume,
        progress=progress,
        console=_console(),
    )


# click's exception base class, found through typer's public API: typer 0.26+ vendors its own
# copy of click, older versions use the click package; BadParameter derives from it in both.
_USAGE_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _explain_config(command, argv: list[str]) -> None:
    """`learn2rl train [--learner NAME] --help`: put NAME's config fields in train's help."""
    if not argv or argv[0] != "train" or not {"--help", "-h"} & set(argv):
        return
    from learn2rl import learners
    from learn2rl.learners.base import config_help

    name = "rl2"
    for i, arg in enumerate(argv):
        if arg == "--learner" and i + 1 < len(argv):
            name = argv[i + 1]
        elif arg.startswith("--learner="):
            name = arg.split("=", 1)[1]
    config_cls, _ = learners.get(name)
    # Blank lines keep the fields apart in typer's help (it joins a paragraph's lines).
    command.commands["train"].epilog = config_help(config_cls, name).replace("\n", "\n\n")


def main(argv: list[str] | None = None) -> int:
    """The ``learn2rl`` entry point; returns the exit status (2 for any usage error)."""
    from learn2rl import distributed
    from learn2rl.devices import use_cpu_cores

    use_cpu_cores()
    argv = list(sys.argv[1:] if argv is None else argv)
    ok, status = False, 1
    try:
        command = typer.main.get_command(app)
        _explain_config(command, argv)
        if distributed.is_multiprocess() and argv and argv[0] not in ("train", "sweep"):
            raise Learn2RLError(
                f"only `learn2rl train` and `learn2rl sweep` run over several processes, not "
                f"{argv[0]!r} (unset {distributed.ENV_COORDINATOR} and the other LEARN2RL_* "
                "process variables)"
            )
        code = command.main(args=argv, prog_name="learn2rl", standalone_mode=False)
    except Learn2RLError as err:
        print(f"error: {err}", file=sys.stderr)
        status = 2
        return 2
    except _USAGE_ERROR as err:  # unknown command or option, missing or malformed value
        where = getattr(getattr(err, "ctx", None), "command_path", None) or "learn2rl"
        message = " ".join(err.format_message().split())
        print(f"error: {message} (see {where} --help)", file=sys.stderr)
        return getattr(err, "exit_code", 2) or 2
    except typer.Exit as exit_:
        return exit_.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        return 130
    except Exception as err:
        if not distributed.is_multiprocess():
            raise
        lost = distributed.lost_peer(err)
        if lost is None:  # a bug: show it before this process leaves the run
            import traceback

            traceback.print_exc()
            raise
        print(f"error: {lost}", file=sys.stderr)
        status = distributed.LOST_PEER_STATUS
        return status
    else:
        ok = not code
    finally:  # the other processes of a multi-process run learn whether this one failed
        distributed.finish(ok, status)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
