"""Executors: where task bodies run. `local` is this machine's: daemon threads, and worker
processes for sync functions whose attempts must be stoppable."""
