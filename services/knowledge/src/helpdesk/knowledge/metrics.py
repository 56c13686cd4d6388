"""The knowledge base's metrics: search and suggestion latency, the index, and the figures
that say whether articles help (views, helped / did not help, suggestions, deflections)."""

from prometheus_client import Counter, Gauge, Histogram

SEARCH_SECONDS = Histogram(
    "helpdesk_knowledge_search_seconds",
    "Time to answer a search or a suggestion from the index.",
    ["kind"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
INDEXED_ARTICLES = Gauge(
    "helpdesk_knowledge_indexed_articles",
    "Articles in this replica's search index, every status.",
)
INDEX_UPDATES = Counter(
    "helpdesk_knowledge_index_updates_total",
    "Article changes applied to this replica's index, by where they came from.",
    ["source"],
)
FEEDBACK = Counter(
    "helpdesk_knowledge_feedback_total",
    "Feedback counted on articles: view, helpful, not_helpful, suggested, deflection.",
    ["kind"],
)
MACRO_RENDERS = Counter(
    "helpdesk_knowledge_macro_renders_total",
    "Macros filled in for a ticket.",
)
