"""Notification through faults on the real servers, the small version of
benchmarks/notification_faults.py: ticket events published as intake would, the service
SIGKILLed mid-batch and started again, the Kafka broker stopped and started on the same
data while the service runs; a real SMTP server and webhook receiver must see every expected
notification once (by delivery id), none lost, and none again except what was in flight at
the SIGKILL."""

from pathlib import Path

import pytest
from conftest import Infra, restart_private_kafka

from benchmarks.launcher import Infra as BenchInfra
from benchmarks.notification_faults import fault_run
from helpdesk.notification.commands import CONCURRENT_SENDS


async def test_every_notification_arrives_once_through_a_crash_and_a_broker_restart(
    infra: Infra, tmp_path: Path
) -> None:
    if not infra.private:
        pytest.skip("restarts Kafka: needs the servers this session starts itself")
    report = await fault_run(
        BenchInfra(kafka=infra.kafka, mongodb_uri=infra.mongodb_uri, private=True),
        events=300,
        faults=["kill", "kafka"],
        restart_broker=restart_private_kafka,
        log_dir=tmp_path,
        stall_timeout=60,
        say=lambda line: None,
    )
    faults = "\n".join(report.faults)
    assert len(report.faults) == 4, faults  # each fault and the recovery from it
    assert report.expected == 450  # an e-mail per ticket, a webhook for every other one
    assert report.missing == [], f"lost {len(report.missing)}:\n{faults}"
    assert report.unexpected == []
    assert report.duplicates == {}, f"delivered twice:\n{faults}"
    assert sum(report.resent_after_kill.values()) <= CONCURRENT_SENDS, report.resent_after_kill
    assert report.passed
    assert report.delivered == report.expected
    assert report.statuses == {"sent": report.expected}
