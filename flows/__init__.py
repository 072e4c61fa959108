"""YAML flows that bot designers write: schema, loader (with line numbers), checks, engine,
rasa-sdk actions, answer validation and conversation tests."""

from flows.engine import FlowEngine, FlowFailure
from flows.loader import FlowError, LoadedFlow, load_flows

__all__ = ["FlowEngine", "FlowError", "FlowFailure", "LoadedFlow", "load_flows"]
