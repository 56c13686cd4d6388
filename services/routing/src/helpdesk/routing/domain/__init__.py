"""Routing's pure rules: the directory of teams and agents, rules, assignment, escalation."""
