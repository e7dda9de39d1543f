"""Feature rows of the shipped group's shape (tx_minute_features), written straight to a store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from connectors.featurestore.model import FeatureGroupDefinition, FeatureType
from tests.reference import minute_key

GROUP = "tx_minute_features"
DEFINITION = FeatureGroupDefinition(
    name=GROUP,
    record_identifier="tx_minute",
    event_time_feature="event_time",
    features={
        "tx_minute": FeatureType.STRING,
        "event_time": FeatureType.FRACTIONAL,
        "total_nb_trx_1min": FeatureType.INTEGRAL,
        "total_fee_1min": FeatureType.INTEGRAL,
        "avg_fee_1min": FeatureType.FRACTIONAL,
    },
)
START = datetime(2024, 5, 1, tzinfo=timezone.utc)


def feature_rows(count: int, start: datetime = START) -> list[dict]:
    rows = []
    for minute in range(count):
        window_start = start + timedelta(minutes=minute)
        rows.append(
            {
                "tx_minute": minute_key(int(window_start.timestamp())),
                "event_time": (window_start + timedelta(minutes=1)).timestamp(),
                "total_nb_trx_1min": minute + 1,
                "total_fee_1min": 1000 * (minute + 1),
                "avg_fee_1min": 1000.0,
            }
        )
    return rows
