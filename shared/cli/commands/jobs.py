"""`imagegen jobs show|list|cancel|retry|fetch`."""

from __future__ import annotations

import argparse

from shared.cli import session
from shared.cli.follow import follow_job, print_summary
from shared.cli.output import emit, table
from shared.contract.states import ACTIVE_STATUSES, JobStatus

# A job in these states is not a failure of the command that showed it.
_FINE = frozenset({JobStatus.COMPLETED, JobStatus.CANCELLED}) | ACTIVE_STATUSES


async def jobs(args: argparse.Namespace) -> int:
    async with await session.connect(args) as client:
        if args.action == "fetch":
            count = await client.fetch_images(args.job_id, args.output)
            emit(
                args,
                {"job_id": args.job_id, "images": count, "folder": str(args.output)},
                f"{count} images and the manifest written to {args.output}",
            )
            return 0
        if args.action == "list":
            found = await client.list_jobs(status=args.status, limit=args.limit)
            rows = [
                (
                    j.job_id,
                    j.source,
                    j.status,
                    j.done,
                    j.failed,
                    j.incomplete,
                    f"{j.created_at:%Y-%m-%d %H:%M:%S}",
                    j.label or "",
                )
                for j in found
            ]
            header = ("JOB", "SOURCE", "STATUS", "DONE", "FAILED", "INCOMPLETE", "CREATED (UTC)", "READ")
            emit(args, found, table(header, rows))
            return 0
        followed = None
        if args.action == "show":
            job = await client.get_job(args.job_id)
        elif args.action == "cancel":
            job = await client.cancel_job(args.job_id)
        else:
            job = await client.retry_job(args.job_id)
            if args.wait:
                followed = await follow_job(
                    client, job.job_id, quiet=bool(getattr(args, "json", False)), attempt=job.attempt
                )
                job = await client.get_job(job.job_id)
        if getattr(args, "json", False):
            emit(args, job)
        else:
            print_summary(job, followed)
        return 0 if job.status in _FINE else 1
