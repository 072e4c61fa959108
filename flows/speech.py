"""What a flow says: the designer's texts in the reply language, rendered in the template
sandbox; a knowledge answer (`say: {knowledge: ...}`); and the hub's own sentences, which come
from the core as `HubWords`."""

from __future__ import annotations

from typing import Any

from jinja2 import Template

from flows.schema import LangText
from flows.templates import compile_template, render
from hub.ports import HubWords, KnowledgeSearch

KNOWLEDGE = "knowledge"  # say: {knowledge: <query template>}


class Speech:
    def __init__(
        self, default_language: str, words: HubWords, knowledge: KnowledgeSearch | None = None
    ) -> None:
        self.default_language = default_language
        self.words = words
        self.knowledge = knowledge  # what `say: {knowledge: ...}` searches
        self._templates: dict[str, Template] = {}

    def text(self, value: LangText | None, variables: dict[str, Any], language: str) -> str | None:
        """The text in the reply language (else the bot's default, else the first), rendered."""
        if value is None:
            return None
        if isinstance(value, dict) and set(value) == {KNOWLEDGE}:
            # `say: {knowledge: "{{ message.text }}"}`: the best article's answer
            query = self.text(value[KNOWLEDGE], variables, language) or ""
            return self.knowledge_answer(query, language)
        if isinstance(value, dict):
            value = (
                value.get(language)
                or value.get(self.default_language)
                or next(iter(value.values()), "")
            )
        template = self._templates.get(value)
        if template is None:
            template = self._templates[value] = compile_template(value)
        return render(template, variables)

    def knowledge_answer(self, query: str, language: str) -> str:
        """The summary (and link) of the knowledge entry that answers `query` confidently;
        else a sentence saying nothing was found."""
        hits = self.knowledge.search(query, 1, language) if self.knowledge and query else []
        if not hits or not hits[0].confident:
            return self.hub_text("knowledge_not_found", language)
        return self.words.entry_text(hits[0].entry, language, self.default_language)

    def hub_text(self, key: str, language: str) -> str:
        """One of the hub's own sentences, in `language` or the bot's default."""
        return self.words.text(key, language, self.default_language)
