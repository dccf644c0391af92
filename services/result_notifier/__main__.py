"""`python -m services.result_notifier` starts the service."""

from services.result_notifier.service import ResultNotifier
from shared.runtime.bus import run_service

if __name__ == "__main__":
    run_service(ResultNotifier)
