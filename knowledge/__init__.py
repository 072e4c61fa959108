"""Knowledge base: a bot's articles (`knowledge/*.md`) and FAQs (`knowledge/*.yml`), searched
when no flow fits the customer's message (BM25 over jieba tokens, synonyms folded).

    kb = KnowledgeBase.load(Path("examples/shop/knowledge"), synonyms=data.synonyms)
    hit = kb.search("顺丰多少钱", language="zh")[0]  # hit.entry.summary["zh"], hit.confident
"""

from knowledge.index import CONFIDENT_MARGIN, MIN_CONFIDENCE, Hit, IndexSettings, KnowledgeBase
from knowledge.loader import Entry, KnowledgeError, check_knowledge

__all__ = [
    "CONFIDENT_MARGIN",
    "MIN_CONFIDENCE",
    "Entry",
    "Hit",
    "IndexSettings",
    "KnowledgeBase",
    "KnowledgeError",
    "check_knowledge",
]
