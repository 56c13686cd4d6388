"""The PromQL of the chart's dashboards and the metric names it selects: shared by the chart
checks (against what the source declares) and the scenario that scrapes running services."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy/helm/helpdesk/files/dashboards"


def dashboard(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DASHBOARDS / name).read_text())
    return loaded


def dashboard_names() -> list[str]:
    return sorted(path.name for path in DASHBOARDS.glob("*.json"))


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(board: dict[str, Any]) -> list[str]:
    """The PromQL of the panels' targets and of the variables' label_values(...) queries."""
    found = [t["expr"] for p in panels(board) for t in p.get("targets", [])]
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else ""
            selector = re.fullmatch(r"label_values\((.+),\s*[a-zA-Z_][a-zA-Z0-9_]*\)", query)
            assert selector, (board["uid"], variable["name"], query)
            found.append(selector.group(1))
    return found


def metric_names(expression: str) -> set[str]:
    """The metric names an expression selects; raises ValueError when it does not parse."""
    # Grafana's variables are not PromQL; give them plain values before parsing.
    expression = expression.replace("$__rate_interval", "5m").replace("$__range", "1h")
    tree = promql_parser.parse(expression)
    names: set[str] = set()

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)

    promql_parser.walk(tree, visit)
    return names
