"""Following a job from the terminal: a live progress bar fed by its events, then a summary.

The bar shows items finished of the total (unknown until ingest has read the whole source),
how many failed, the rate and the time left at that rate. The rate is the attempt's own, from
its events' times (`Pace`), so the bar's last figure and the summary's are the same number, and
a retry's rate counts only what the retry rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Pace:
    """Items finished per second by the attempt being followed, between its first event seen
    and its latest (server times, so a slow terminal does not change the figure)."""

    first: JobEvent | None = None
    last: JobEvent | None = None

    def observe(self, event: JobEvent) -> None:
        if self.first is None or event.attempt != self.first.attempt:
            self.first = event  # a new attempt starts counting from here
        self.last = event

    @property
    def seconds(self) -> float | None:
        if self.first is None or self.last is None:
            return None
        return (self.last.at - self.first.at).total_seconds()

    @property
    def rate(self) -> float | None:
        seconds = self.seconds
        if self.first is None or self.last is None or not seconds or seconds <= 0:
            return None
        items = self.last.done + self.last.failed - self.first.done - self.first.failed
        return items / seconds


@dataclass(frozen=True)
class Followed:
    final: JobEvent
    pace: Pace


class RateColumn(ProgressColumn):
    """The attempt's items per second (`Pace`)."""

    def render(self, task: Task) -> Text:
        rate = task.fields.get("rate")
        return Text("-- items/s" if rate is None else f"{rate:,.0f} items/s", style="progress.data.speed")


async def follow_job(
    client: Client, job_id: str, *, quiet: bool = False, attempt: int | None = None
) -> Followed:
    """Show progress until the job (its `attempt`, if given) ends; return its terminal event."""
    pace = Pace()
    if quiet:
        return Followed(await client.wait(job_id, attempt=attempt, on_event=pace.observe), pace)
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
        bar = progress.add_task("accepted", total=None, failed=0, rate=None)

        def on_event(event: JobEvent) -> None:
            pace.observe(event)
            progress.update(
                bar,
                total=event.total,
                completed=event.done + event.failed,
                failed=event.failed,
                description=event.status,
                rate=pace.rate,
            )

        final = await client.wait(job_id, attempt=attempt, on_event=on_event)
        return Followed(final, pace)


def _took(job: JobInfo, followed: Followed | None) -> str:
    """The `" in 1.2s (840 items/s)"` after a job's counts: the followed attempt's pace, else
    (first attempt only) the ledger's times; a later attempt not followed has no rate of its own
    to show."""
    if followed is not None and followed.pace.seconds is not None:
        seconds, rate = followed.pace.seconds, followed.pace.rate
    elif job.attempt == 1 and job.finished_at and job.started_at:
        seconds = (job.finished_at - job.started_at).total_seconds()
        rate = (job.done + job.failed) / seconds if seconds > 0 else None
    else:
        return ""
    took = f" in {seconds:.2f}s" if seconds < 10 else f" in {seconds:,.1f}s"
    return took + ("" if rate is None else f" ({rate:,.0f} items/s)")


def print_summary(job: JobInfo, followed: Followed | None = None) -> None:
    """What a person wants after a job: status, counts, speed, where the files and manifest are."""
    final = followed.final if followed else None
    attempt = f" (attempt {job.attempt})" if job.attempt > 1 else ""
    console.print(
        f"job [bold]{job.job_id}[/bold]{attempt}: {job.status}{_took(job, followed)}", soft_wrap=True
    )
    console.print(
        f"  items: {'?' if job.total is None else job.total} total, {job.done} rendered, {job.failed} failed"
        + (f", {job.incomplete} incomplete (characters no font covers)" if job.incomplete else "")
    )
    if job.output and job.done:  # no image, no folder (a failed job may have none)
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
