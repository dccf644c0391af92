"""`python -m services.ingest_db` starts the service."""

from services.ingest_db.service import IngestDb
from shared.bus import run_service

if __name__ == "__main__":
    run_service(IngestDb)
