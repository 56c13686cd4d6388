"""The SLA benchmark writes ticket_slas documents itself; they must stay the ones the SLA
service writes, or `make bench-sla` refuses to start (as it did once a field was added)."""

from benchmarks.sla_timers import check_document_shape, make_policy


async def test_the_benchmark_writes_the_documents_the_sla_service_writes() -> None:
    # Raises LaunchError naming the fields that differ.
    await check_document_shape(make_policy("45s", 0.8), teams=50)
