"""The worker's tunables, importable without APScheduler: `pacsbridge worker --help` shows them."""

CLAIM_INTERVAL_S = 5.0
RELOAD_INTERVAL_S = 30.0
HEALTH_MINUTES = 5.0
SYNC_THREADS = 4
