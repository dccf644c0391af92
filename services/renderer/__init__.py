"""renderer: pulls render tasks from the shared `renderer` consumer, renders, stores, reports;
answers `imagegen.fonts`, `imagegen.validate` and `imagegen.preview`."""
