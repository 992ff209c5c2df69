"""The ``learn2rl`` command: list | train | evaluate | reproduce | demo.

Bad input (unknown ids, values out of range, a corrupt or mismatched checkpoint) ends with a
one-line
``error: ...`` on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
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
    console.print("[bold]learners[/bold]")
    for name in learners.list_learners():
        console.print(f"  {name:<28} {learners.describe(name)}")
    console.print("[bold]baselines[/bold]")
    from learn2rl.tasks.tabular_mdp import TabularMDP

    console.print("  bandits: " + ", ".join(baselines.list_baselines()))
    console.print("  tabular MDPs: " + ", ".join(baselines.list_baselines(TabularMDP())))
    console.print("[bold]experiments[/bold] (learn2rl reproduce NAME)")
    for name, description in list_experiments().items():
        console.print(f"  {name:<28} {description}")


def _parse_overrides(config_cls, pairs: list[str]) -> dict:
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    hints = typing.get_type_hints(config_cls)
    values = {}
    for pair in pairs:
        if "=" not in pair:
            raise Learn2RLError(f"--set takes FIELD=VALUE, got {pair!r}")
        name, raw = pair.split("=", 1)
        name = name.strip().replace("-", "_")
        if name not in fields:
            raise Learn2RLError(f"unknown config field {name!r}; known: {', '.join(fields)}")
        kind = hints[name]
        optional = type(None) in typing.get_args(kind)
        if optional:  # "X | None": "none" means None, anything else is read as X
            kind = next(k for k in typing.get_args(kind) if k is not type(None))
            if raw.strip().lower() == "none":
                values[name] = None
                continue
        try:
            if typing.get_origin(kind) is tuple:  # e.g. hidden_sizes=64,64
                item = typing.get_args(kind)[0]
                values[name] = tuple(item(part) for part in raw.split(",") if part.strip())
                continue
            if kind is bool:
                if raw.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(raw)
                values[name] = raw.lower() in ("true", "1")
            elif kind is int:
                values[name] = int(raw)
            elif kind is float:
                values[name] = float(raw)
            else:
                values[name] = raw
        except ValueError:
            what = getattr(kind, "__name__", str(kind))
            raise Learn2RLError(f"--set {name}: cannot read {raw!r} as {what}") from None
    return values


@app.command()
def train(
    out: OutOption,
    learner: Annotated[str, typer.Option(help="Learner id (learn2rl list).")] = "rl2",
    task: Annotated[str | None, typer.Option(help="Task family id.")] = None,  # noqa: UP007
    updates: Annotated[int | None, typer.Option(help="Number of updates.")] = None,  # noqa: UP007
    seed: Annotated[int | None, typer.Option(help="Random seed.")] = None,  # noqa: UP007
    set_: Annotated[
        list[str] | None,
        typer.Option(  # noqa: UP007
            "--set", help="Any config field, FIELD=VALUE (repeatable), e.g. --set num_tasks=512."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run saved in --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
):
    """Meta-train a learner; writes checkpoint/, metrics.jsonl, tensorboard/ and training.png."""
    from learn2rl import learners, runner, tasks
    from learn2rl.logging import read_metrics
    from learn2rl.plots import plot_training

    config_cls, _ = learners.get(learner)
    values = _parse_overrides(config_cls, set_ or [])
    for name, value in (("task", task), ("num_updates", updates), ("seed", seed)):
        if value is not None:
            values[name] = value
    config = config_cls(**values)
    tasks.make(config.task)  # an unknown task id fails here, before any compilation
    console = _console()
    _, state = runner.train(learner, config, out, resume=resume, progress=progress, console=console)
    plot_training(read_metrics(out / "metrics.jsonl"), out / "training.png")
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
    family = learner.family
    names = None if baselines_ is None else [b.strip() for b in baselines_.split(",") if b.strip()]
    # RL^2 runs the trial it was trained on; a gradient learner (MAML, Reptile, MAESN) the
    # episodes of one meta-training task: a batch before and after each inner step.
    num_episodes = getattr(learner.config, "num_episodes", None) or learner.trial.num_episodes
    agents = [learner.agent(state.params, name=meta["learner"])]
    agents += baseline_agents(family, num_episodes, names)
    console = _console()
    results = compare(agents, family, num_episodes, num_tasks, console=console)
    write_outputs(
        out,
        results,
        f"{meta['learner']} on {family.family_id}",
        f"Checkpoint {directory} (update {meta['update']}) on {num_tasks} held-out tasks.",
        console=console,
    )
    console.print(f"wrote {out / 'report.md'}, {out / 'results.json'}, {out / 'regret.png'}")


@app.command()
def reproduce(
    name: Annotated[str, typer.Argument(help="Experiment id (learn2rl list).")],
    out: OutOption = Path("runs/reproduce"),
    quick: Annotated[bool, typer.Option(help="The laptop-sized variant.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
):
    """Run a named paper experiment and write its report."""
    from learn2rl.experiments import get_experiment

    experiment = get_experiment(name)
    experiment(out=out, quick=quick, progress=progress, console=_console())


@app.command()
def demo(
    out: OutOption = Path("runs/demo"),
    quick: Annotated[
        bool, typer.Option(help="A 30-second version (it does not reach the Bayes-optimal limit).")
    ] = False,
    num_test_tasks: Annotated[int, typer.Option(help="Held-out test tasks.")] = 10_000,
    resume: Annotated[bool, typer.Option(help="Continue an interrupted demo in --out.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
):
    """The main job: RL^2 on 2-armed bandits (100 pulls) against every bandit baseline."""
    from learn2rl.experiments import demo as demo_experiment

    if num_test_tasks <= 0:
        raise Learn2RLError(f"--num-test-tasks must be positive, got {num_test_tasks}")
    console = _console()
    demo_experiment.run(
        out,
        quick=quick,
        num_test_tasks=num_test_tasks,
        progress=progress,
        console=console,
        resume=resume,
    )
    console.print(f"wrote {out}/report.md, results.json, regret.png, training.png, checkpoint/")


def main(argv: list[str] | None = None) -> int:
    from learn2rl.devices import use_cpu_cores

    use_cpu_cores()
    try:
        app(args=argv, standalone_mode=False)
    except Learn2RLError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except typer.Exit as exit_:
        return exit_.exit_code
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        return 130
    except Exception as err:  # click usage errors
        import click

        if isinstance(err, click.ClickException):
            err.show()
            return err.exit_code
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
