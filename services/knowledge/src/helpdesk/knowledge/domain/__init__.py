"""The knowledge base's pure rules: articles and their versions, macros."""
