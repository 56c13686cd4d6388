"""Who hears what, in which words: subscriptions, preferences, templates, throttling, retries."""
