"""Worker processes of one ``tensorgate serve`` acting as one server: repository changes
reach every worker, statistics count all of them (nothing of it runs with one process)."""
