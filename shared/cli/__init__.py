"""The `imagegen` command line: serve a service, run the local stack, submit and follow jobs."""
