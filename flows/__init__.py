"""YAML flows that bot designers write: schema, loader (with line numbers), checks, engine,
rasa-sdk actions, answer validation and the conversation-test format (their runner, which needs
a whole hub, is hub.testing.convtest).

flows/ imports only the core's public interface (hub.messages, hub.ports, hub.yaml_places);
what else the engine needs of the core comes in as `hub.ports.HubWords`."""

from flows.engine import FlowEngine, FlowFailure
from flows.loader import FlowError, LoadedFlow, load_flows

__all__ = ["FlowEngine", "FlowError", "FlowFailure", "LoadedFlow", "load_flows"]
