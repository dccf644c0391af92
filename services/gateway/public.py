"""What the gateway says about a job over HTTP: its ledger row and its events with the
deployment's storage locations replaced by the gateway's own URLs.

Inside the deployment `output` and `manifest` name a folder or a bucket; over HTTP they would
mean nothing to the caller and would tell anyone the server's layout, so they become the URLs
of the job's file list and manifest.
"""

from __future__ import annotations

import msgspec

from shared.contract.messages import JobEvent, JobInfo


def files_url(root: str, job_id: str) -> str:
    return f"{root}/jobs/{job_id}/files"


def manifest_url(root: str, job_id: str) -> str:
    return f"{root}/jobs/{job_id}/manifest"


def public_job(job: JobInfo, root: str = "") -> JobInfo:
    return msgspec.structs.replace(job, output=files_url(root, job.job_id) if job.output else None)


def public_event(event: JobEvent, root: str = "") -> JobEvent:
    return msgspec.structs.replace(
        event,
        output=files_url(root, event.job_id) if event.output else None,
        manifest=manifest_url(root, event.job_id) if event.manifest else None,
    )
