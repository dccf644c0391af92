"""result-notifier: keeps the job ledger from the results stream, announces job lifecycle
events and answers `imagegen.jobs.*`."""
