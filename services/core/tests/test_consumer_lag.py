"""Consumer lag: the arithmetic and which groups a broker's subscribers form."""

from faststream.kafka import KafkaBroker

from helpdesk.core.consumer_lag import PartitionLag, consumer_groups, partition_lags

TOPIC = "helpdesk.tickets.events.v1"


def test_lag_is_log_end_minus_committed() -> None:
    lags = partition_lags(
        "g",
        end={(TOPIC, 0): 10, (TOPIC, 1): 7},
        beginning={(TOPIC, 0): 0, (TOPIC, 1): 0},
        committed={(TOPIC, 0): 4, (TOPIC, 1): 7},
    )
    assert lags == [PartitionLag("g", TOPIC, 0, 6), PartitionLag("g", TOPIC, 1, 0)]


def test_nothing_committed_counts_the_whole_log() -> None:
    # -1 is what Kafka answers for a partition the group never committed on.
    lags = partition_lags(
        "g",
        end={(TOPIC, 0): 10, (TOPIC, 1): 5},
        beginning={(TOPIC, 0): 2, (TOPIC, 1): 0},
        committed={(TOPIC, 0): -1},
    )
    assert [lag.lag for lag in lags] == [8, 5]


def test_a_commit_older_than_retention_counts_from_the_first_offset() -> None:
    lags = partition_lags("g", end={(TOPIC, 0): 100}, beginning={(TOPIC, 0): 90}, committed={})
    assert lags[0].lag == 10
    lags = partition_lags(
        "g", end={(TOPIC, 0): 100}, beginning={(TOPIC, 0): 90}, committed={(TOPIC, 0): 30}
    )
    assert lags[0].lag == 10


def test_lag_is_never_negative() -> None:
    # A topic deleted and created again under a group that committed further.
    lags = partition_lags(
        "g", end={(TOPIC, 0): 3}, beginning={(TOPIC, 0): 0}, committed={(TOPIC, 0): 50}
    )
    assert lags[0].lag == 0


def test_groups_of_the_subscribers() -> None:
    broker = KafkaBroker("127.0.0.1:1")

    async def handle(body: bytes) -> None:
        del body

    broker.subscriber("a", "b", group_id="one")(handle)
    broker.subscriber("c", group_id="one")(handle)
    broker.subscriber("d", group_id="two")(handle)
    broker.subscriber("e")(handle)  # no group: nothing committed, no lag
    assert consumer_groups(broker) == {"one": {"a", "b", "c"}, "two": {"d"}}
