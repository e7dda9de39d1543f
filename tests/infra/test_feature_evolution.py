"""`cdk synth` follows the feature files: a column added to one shows as an added feature of its
SageMaker feature group (derived at synth by the job's own code, as the job derives it at start)."""

from __future__ import annotations

import os
import shutil
import zipfile

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from infra.app import build_app  # noqa: E402
from job.flow.sql_files import FEATURES_DIR  # noqa: E402

pytestmark = pytest.mark.slow
GROUP = "tx_minute_features"


def test_a_column_added_to_a_feature_file_is_an_added_feature_of_the_synthesized_group(tmp_path, monkeypatch) -> None:
    features = tmp_path / "features"
    features.mkdir()
    sql = (FEATURES_DIR / f"{GROUP}.sql").read_text()
    grown = sql.replace("    AVG(CAST(fee AS DOUBLE)) AS avg_fee_1min\n",
                        "    AVG(CAST(fee AS DOUBLE)) AS avg_fee_1min,\n    MAX(fee) AS max_fee_1min\n")
    assert grown != sql
    (features / f"{GROUP}.sql").write_text(grown)
    monkeypatch.setattr("job.flow.config.FEATURES_DIR", features)  # what editing sql/features/ does

    jar = tmp_path / "flink-sql-connector-aws-kinesis-streams-6.0.0-2.0.jar"  # a stand-in: no Maven here
    with zipfile.ZipFile(jar, "w") as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
    from job.deploy.package import build_zip

    build_zip(tmp_path / "app.zip", [jar])
    app, stacks = build_app(cdk.App(outdir=str(tmp_path / "cdk.out"), context={"job_zip": str(tmp_path / "app.zip")}))
    app.synth()
    (group,) = Template.from_stack(stacks["feature_store"]).find_resources("AWS::SageMaker::FeatureGroup").values()
    assert group["Properties"]["FeatureDefinitions"] == [
        {"FeatureName": "tx_minute", "FeatureType": "String"},
        {"FeatureName": "event_time", "FeatureType": "Fractional"},
        {"FeatureName": "total_nb_trx_1min", "FeatureType": "Integral"},
        {"FeatureName": "total_fee_1min", "FeatureType": "Integral"},
        {"FeatureName": "avg_fee_1min", "FeatureType": "Fractional"},
        {"FeatureName": "max_fee_1min", "FeatureType": "Integral"},  # the added column, last, as the service adds it
    ]
    shutil.rmtree(tmp_path / "cdk.out", ignore_errors=True)


def test_a_collection_feature_is_refused_at_synth_with_what_to_do() -> None:
    """CloudFormation's FeatureDefinition has no CollectionType: the group would deploy with a String feature."""
    from connectors.featurestore.model import Collection, CollectionType, FeatureGroupDefinition, FeatureType
    from infra.stacks.feature_store import feature_group_properties

    listed = FeatureGroupDefinition("input_addresses_minute", "tx_minute", "event_time",
                                    {"tx_minute": FeatureType.STRING, "event_time": FeatureType.FRACTIONAL,
                                     "input_addresses": FeatureType.STRING},
                                    collections={"input_addresses": Collection(CollectionType.LIST)})
    with pytest.raises(ValueError, match=r"collection features \(input_addresses\).*InMemory.*Leave that feature file"):
        feature_group_properties(listed, "s3://bucket/offline", "arn:key", "arn:role")
