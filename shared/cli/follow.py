"""Following a job from the terminal: a live progress bar fed by its events, then a summary.

The bar shows items finished of the total (unknown until ingest has read the whole source),
how many failed, the rate over the last seconds and the time left at that rate.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from shared.client import Client
from shared.contract.messages import JobEvent, JobInfo

console = Console(stderr=True)


class RateColumn(ProgressColumn):
    """Items per second, from rich's moving estimate of the task's speed."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None and task.elapsed and task.completed:
            speed = task.completed / task.elapsed  # too few samples for an estimate yet
        return Text("-- items/s" if speed is None else f"{speed:,.0f} items/s", style="progress.data.speed")


async def follow_job(
    client: Client, job_id: str, *, quiet: bool = False, attempt: int | None = None
) -> JobEvent:
    """Show progress until the job (its `attempt`, if given) ends; return its terminal event."""
    if quiet:
        return await client.wait(job_id, attempt=attempt)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        console.print(f"following job [bold]{job_id}[/bold]", soft_wrap=True)
        bar = progress.add_task("accepted", total=None, failed=0)

        def on_event(event: JobEvent) -> None:
            progress.update(
                bar,
                total=event.total,
                completed=event.done + event.failed,
                failed=event.failed,
                description=event.status,
            )

        return await client.wait(job_id, attempt=attempt, on_event=on_event)


def print_summary(job: JobInfo, final: JobEvent | None = None) -> None:
    """What a person wants after a job: status, counts, speed, where the files and manifest are."""
    took = ""
    if job.finished_at and job.started_at:
        seconds = (job.finished_at - job.started_at).total_seconds()
        rate = (job.done + job.failed) / seconds if seconds > 0 else 0.0
        took = f" in {seconds:.1f}s ({rate:,.0f} items/s)"
    console.print(f"job [bold]{job.job_id}[/bold]: {job.status}{took}")
    console.print(
        f"  items: {'?' if job.total is None else job.total} total, {job.done} rendered, {job.failed} failed"
        + (f", {job.incomplete} incomplete (characters no font covers)" if job.incomplete else "")
    )
    if job.output:
        console.print(f"  images: {job.output}", soft_wrap=True)  # paths stay whole
    if final is not None and final.manifest:
        console.print(f"  manifest: {final.manifest}", soft_wrap=True)
    if job.error:
        console.print(f"  error: {job.error}", markup=False, soft_wrap=True)
    for failure in job.failures[:20]:
        console.print(f"  row {failure.row} {failure.kind}: {failure.reason}", markup=False, soft_wrap=True)
    listed = len(job.failures[:20])
    if job.failed + job.incomplete > listed:
        console.print(f"  ... {job.failed + job.incomplete - listed} more (see the manifest)")
