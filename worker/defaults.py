"""The worker's tunables, importable without APScheduler: `pacsbridge worker --help` shows them."""

# How often a worker looks for due syncs, health checks and queued requests in the store.
CLAIM_INTERVAL_S = 5.0
# How often it tells the store it is alive (and plans integrations added meanwhile).
HEARTBEAT_S = 15.0
HEALTH_MINUTES = 5.0
# Integrations one worker syncs at once; each sync has its integration's own request limit.
SLOTS = 4
# Health checks one worker runs at once (one short request each).
HEALTH_THREADS = 4
