"""The SLA service's pure rules: business calendars, policies and per-ticket clocks."""
