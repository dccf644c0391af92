"""What both ingest services share: accepting a submit and turning rows into render tasks."""

from shared.ingest.accept import accept_submit
from shared.ingest.publisher import TaskPublisher
from shared.ingest.worker import Row, RowSource, ingest_worker

__all__ = ["Row", "RowSource", "TaskPublisher", "accept_submit", "ingest_worker"]
