"""Following a job from the terminal: a live progress bar fed by its events, then a summary."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from shared.client import Client
from shared.messages import JobEvent, JobInfo

console = Console(stderr=True)


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
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        bar = progress.add_task(job_id, total=None, failed=0)

        def on_event(event: JobEvent) -> None:
            progress.update(
                bar,
                total=event.total,
                completed=event.done + event.failed,
                failed=event.failed,
                description=f"{job_id} {event.status}",
            )

        return await client.wait(job_id, attempt=attempt, on_event=on_event)


def print_summary(job: JobInfo) -> None:
    took = ""
    if job.finished_at and job.started_at:
        seconds = (job.finished_at - job.started_at).total_seconds()
        rate = (job.done + job.failed) / seconds if seconds > 0 else 0.0
        took = f" in {seconds:.1f}s ({rate:,.0f} items/s)"
    console.print(f"job [bold]{job.job_id}[/bold]: {job.status}{took}")
    console.print(
        f"  items: {'?' if job.total is None else job.total} total, {job.done} rendered, {job.failed} failed"
    )
    if job.output:
        console.print(f"  images: {job.output}")
    if job.error:
        console.print(f"  error: {job.error}")
    for failure in job.failures[:20]:
        console.print(f"  item {failure.index}: {failure.reason}")
