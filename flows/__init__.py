"""YAML flows that bot designers write: schema, loader (with line numbers), engine."""

from flows.engine import FlowEngine
from flows.loader import FlowError, LoadedFlow, load_flows

__all__ = ["FlowEngine", "FlowError", "LoadedFlow", "load_flows"]
