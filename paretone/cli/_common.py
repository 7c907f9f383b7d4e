"""What every command shares: the click group, error handling, progress bars, data options."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from paretone.errors import ParetoneError

console = Console(stderr=True)


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"paretone: error: {self.format_message()}", err=True)


class ParetoneGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ParetoneError as exc:
            raise UserError(str(exc)) from None


def progress_bar() -> Progress:
    """Live bars on a terminal; nothing when stderr is a file or pipe (rich would only print the
    last frame there, which would bury a one-line error under stale bars)."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )


_data_options = [
    click.option(
        "--data",
        type=click.Path(path_type=Path),
        default=None,
        help="Dataset folder or manifest CSV (default: $PARETONE_DATA, then ../shared/data/fsdd).",
    ),
    click.option(
        "--layout",
        type=click.Choice(["auto", "fsdd", "manifest", "folders"]),
        default="auto",
        show_default=True,
        help="How the dataset is organised.",
    ),
    click.option(
        "--split",
        default="default",
        show_default=True,
        help="default, official, speaker:NAME[:K] (K validation speakers), fold:K or hash.",
    ),
]


def data_options(func: Any) -> Any:
    for option in reversed(_data_options):
        func = option(func)
    return func


@click.group(cls=ParetoneGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="paretone")
def cli() -> None:
    """Hardware-aware compression search for audio neural networks."""


def stage_bars(progress: Progress, prefix: str = "") -> Callable[[str, int, int], None]:
    """Adapt a (stage, done, total) progress callback to one rich bar per stage."""
    tasks: dict[str, TaskID] = {}

    def update(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = progress.add_task(f"{prefix}{stage}", total=total)
        progress.update(tasks[stage], completed=done, total=total)

    return update
