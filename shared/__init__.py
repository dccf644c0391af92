"""Code every imagegen service uses: wire messages, subjects, settings, logging, bus helpers,
the render engine, storage and the job ledger. Services import from here, never each other."""
