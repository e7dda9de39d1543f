"""The CLI's rendering of one record (job/cli/output.py), on a few values."""

import json

from job.cli.output import OutputFormat, render_record, with_moment_shown


def test_a_nested_count_per_group_reads_as_key_value_pairs_in_a_table():
    text = render_record({"rows": 3, "labels_with_features": {"tx_minute_features": 2, "relay_minute": 0}},
                         OutputFormat.table)
    assert "tx_minute_features: 2, relay_minute: 0" in text
    assert "{" not in text


def test_json_keeps_the_nesting():
    record = {"rows": 3, "labels_with_features": {"tx_minute_features": 2}}
    assert json.loads(render_record(record, OutputFormat.json)) == record


def test_a_rows_event_time_reads_as_iso_8601_utc_and_nothing_else_changes():
    row = {"tx_minute": "2024-05-01 00:00:00", "event_time": 1714521660.0, "total_nb_trx_1min": 240}
    assert with_moment_shown(row, "event_time") == {**row, "event_time": "2024-05-01T00:01:00Z"}
    already_iso = {"entity": "a", "moment": "2024-05-01T00:01:00Z"}  # a String event time is ISO 8601 already
    assert with_moment_shown(already_iso, "moment") == already_iso
    assert "2024-05-01T00:01:00Z" in render_record(with_moment_shown(row, "event_time"), OutputFormat.table)
