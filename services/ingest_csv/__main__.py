"""`python -m services.ingest_csv` starts the service."""

from services.ingest_csv.service import IngestCsv
from shared.bus import run_service

if __name__ == "__main__":
    run_service(IngestCsv)
