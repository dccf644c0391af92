"""`python -m services.ingest` starts one ingest replica."""

from services.ingest.service import Ingest
from shared.runtime.bus import run_service

if __name__ == "__main__":
    run_service(Ingest)
