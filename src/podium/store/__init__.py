"""The journal: where runs' events are kept, in a SQLite file or a PostgreSQL database."""

from podium.store._open import is_url, open_store

__all__ = ["is_url", "open_store"]
