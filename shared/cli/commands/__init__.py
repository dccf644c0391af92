"""The commands of `imagegen`, one module per group; each takes the parsed arguments and returns
the process exit code."""
