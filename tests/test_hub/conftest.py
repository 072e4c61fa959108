"""Fixtures of tests/test_hub: real hub processes over PostgreSQL and Redis (hubprocs.py)."""

from tests.test_hub.hubprocs import cluster, trained_models

__all__ = ["cluster", "trained_models"]
