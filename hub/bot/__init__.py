"""The bot the hub serves, from its folder (flows, NLU data, knowledge, actions, automation
rules): loading and checking it, training its classifier, reloading it while the hub runs, and
the admin API about it. The composition side: it builds the implementations (flows/, nlu/,
knowledge/) that the core only knows through hub.ports."""

from hub.bot.files import (
    BotFiles,
    current_files,
    ensure_classifier,
    flow_engine,
    load_flow_engine,
    make_fallback,
    model_dir,
    model_stamp,
    read_bot,
    train_classifier,
)
from hub.bot.reloader import BotReloader

__all__ = [
    "BotFiles",
    "BotReloader",
    "current_files",
    "ensure_classifier",
    "flow_engine",
    "load_flow_engine",
    "make_fallback",
    "model_dir",
    "model_stamp",
    "read_bot",
    "train_classifier",
]
