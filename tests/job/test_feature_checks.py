"""Mistakes in a feature file that Flink accepts as SQL but cannot run, or that SageMaker would refuse: each stops
the job's build (before any replay, any feature group) with one message naming the file and its line."""

from __future__ import annotations

import subprocess

import pytest

from job.flow.config import JobConfig, load_property_groups
from job.flow.feature_groups import FeatureFileError
from job.flow.pipeline import build_pipeline
from job.flow.sql_files import FEATURES_DIR
from tests.support import error_lines

pytestmark = pytest.mark.slow

SHIPPED = (FEATURES_DIR / "tx_minute_features.sql").read_text()
WINDOW_KEY = "GROUP BY window_start, window_end;"

# name of the file -> (its text, the line the message must name, what the message must say)
MISTAKES = {
    "no_window": ("CREATE TEMPORARY VIEW no_window AS\n"
                  "SELECT relayed_by, CAST(MAX(`time`) AS DOUBLE) AS event_time, COUNT(*) AS n\n"
                  "FROM unique_transactions\n"
                  "GROUP BY relayed_by;\n", 4, "rows change as transactions arrive"),
    "window_start_only": (SHIPPED.replace("window_start, window_end;", "window_start;")
                          .replace("DATE_FORMAT(window_end", "DATE_FORMAT(MAX(window_end)")
                          .replace("tx_minute_features", "window_start_only"),
                          SHIPPED.splitlines().index(WINDOW_KEY) + 1, "rows change as transactions arrive"),
    "hop_7s": (SHIPPED.replace("TUMBLE(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '1' MINUTE)",
                               "HOP(TABLE unique_transactions, DESCRIPTOR(ts), INTERVAL '7' SECOND, INTERVAL '1' MINUTE)")
               .replace("tx_minute_features", "hop_7s"),
               next(n for n, line in enumerate(SHIPPED.splitlines(), 1) if "TUMBLE(" in line),
               "size must be an integral multiple of slide"),
    "reserved_name": (SHIPPED.replace("AS total_fee_1min", "AS write_time").replace("tx_minute_features", "reserved_name"),
                      next(n for n, line in enumerate(SHIPPED.splitlines(), 1) if "AS total_fee_1min" in line),
                      "column write_time has a name the offline store keeps for its own column"),
}


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_a_mistake_flink_or_sagemaker_would_refuse_later_stops_the_build_naming_file_and_line(name, tmp_path) -> None:
    text, line, says = MISTAKES[name]
    features = tmp_path / "features"
    features.mkdir()
    (features / f"{name}.sql").write_text(text)
    config = JobConfig.from_properties(load_property_groups(), tmp_path / "data", features_dir=features)
    with pytest.raises(FeatureFileError) as refused:
        build_pipeline(config, plan_cache=None)
    message = str(refused.value)
    assert message.startswith(f"{features / name}.sql:{line}: ") and says in message, message
    assert "\n" not in message and "Exception" not in message


def test_a_file_name_flink_cannot_use_as_a_view_name_says_what_to_rename_it_to(tmp_path) -> None:
    features = tmp_path / "features"
    features.mkdir()
    (features / "fee-stats.sql").write_text(SHIPPED.replace("tx_minute_features", "fee_stats"))
    config = JobConfig.from_properties(load_property_groups(), tmp_path / "data", features_dir=features)
    with pytest.raises(FeatureFileError, match=r"fee-stats\.sql: .*rename it to fee_stats\.sql and its view to fee_stats"):
        build_pipeline(config, plan_cache=None)


def test_the_run_refuses_it_before_replaying_or_creating_anything(data_dir, cli_env, tmp_path) -> None:
    from tests.conftest import CHAINFEAT

    features = tmp_path / "features"
    features.mkdir()
    (features / "tx_minute_features.sql").write_text(SHIPPED)
    (features / "no_window.sql").write_text(MISTAKES["no_window"][0])
    result = subprocess.run([*CHAINFEAT, "run", "--data-dir", str(data_dir), "--features", str(features), "--speed", "0",
                             "--exit-when-done", "--dashboard-port", "0", "--featurestore-port", "0"],
                            env=cli_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (error,) = error_lines(result.stderr)
    assert error.startswith(f"error: {features / 'no_window.sql'}:4: "), result.stderr
    assert not (data_dir / "spool").exists()  # nothing replayed
    listed = subprocess.run([*CHAINFEAT, "latest", "--data-dir", str(data_dir)], env=cli_env, capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 3 and "no feature group in the local store in" in listed.stderr  # no group created, not even the good one
