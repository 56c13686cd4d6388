"""What a service's health follows: its MongoDB and its Kafka answering."""

from typing import Any

from faststream.kafka import KafkaBroker
from pymongo import AsyncMongoClient

from helpdesk.core.grpc_server import HealthCheck
from helpdesk.core.kafka import kafka_ping
from helpdesk.core.mongo import ping


def dependency_checks(
    mongo: AsyncMongoClient[dict[str, Any]], broker: KafkaBroker
) -> dict[str, HealthCheck]:
    """The checks the gRPC health service and intake's /readyz run, by dependency."""
    return {"mongodb": lambda: ping(mongo), "kafka": lambda: kafka_ping(broker)}
