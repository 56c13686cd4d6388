"""The knowledge base's pure rules: articles and versions, search, macros."""
