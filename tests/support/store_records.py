"""Records in the Feature Store API's own shape (minute_features), and what the offline store holds."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from job.local.data_dir import DataDir

GROUP = "minute_features"
DEFINITIONS = [
    {"FeatureName": "tx_minute", "FeatureType": "String"},
    {"FeatureName": "event_time", "FeatureType": "Fractional"},
    {"FeatureName": "count", "FeatureType": "Integral"},
    {"FeatureName": "avg_fee", "FeatureType": "Fractional"},
]


def record(minute: str, event_time: str, count: str = "1", avg_fee: str = "2.5") -> list[dict[str, str]]:
    return [
        {"FeatureName": "tx_minute", "ValueAsString": minute},
        {"FeatureName": "event_time", "ValueAsString": event_time},
        {"FeatureName": "count", "ValueAsString": count},
        {"FeatureName": "avg_fee", "ValueAsString": avg_fee},
    ]


def offline_rows(data_dir: Path, group: str = GROUP) -> list[dict]:
    files = sorted((DataDir(data_dir).featurestore / "offline" / group).rglob("*.parquet"))
    return [row for path in files for row in pq.read_table(path).to_pylist()]
