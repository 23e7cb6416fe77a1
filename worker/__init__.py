"""The `pacsbridge worker` process: runs scheduled and requested pulls through core.sync.

`worker.scheduler` holds the jobs (APScheduler), `worker.service` the foreground process around
them, `worker.defaults` the tunables (importable without APScheduler).
"""
