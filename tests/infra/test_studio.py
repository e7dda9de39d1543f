"""StudioStack synthesizes offline with every cdk-nag finding acknowledged (and each acknowledgment needed); the
domain is VPC-only, the user's role is scoped to the named feature group, bucket, key and notebook object, and
the clean-up custom resources are deleted in the order the Studio deletion needs."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")

import aws_cdk as cdk  # noqa: E402
from aws_cdk import Duration, RemovalPolicy  # noqa: E402
from aws_cdk import aws_s3 as s3  # noqa: E402
from aws_cdk.assertions import Match, Template  # noqa: E402
from cdk_nag import AwsSolutionsChecks  # noqa: E402

from connectors.featurestore.model import FeatureGroupDefinition, FeatureType  # noqa: E402
from infra.nag import acknowledge_findings  # noqa: E402
from infra.settings import InfraSettings  # noqa: E402
from infra.stacks.feature_store import FeatureStoreStack  # noqa: E402
from infra.stacks.studio import StudioStack  # noqa: E402
from infra.studio_acknowledgments import STUDIO_ACKNOWLEDGED  # noqa: E402

# One test worker takes the whole module ("make test" runs them in parallel): the module's CDK synthesis runs once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("cdk-studio")]

GROUP = FeatureGroupDefinition(
    name="tx_minute_features", record_identifier="tx_minute", event_time_feature="event_time",
    features={"tx_minute": FeatureType.STRING, "event_time": FeatureType.FRACTIONAL,
              "total_nb_trx_1min": FeatureType.INTEGRAL, "total_fee_1min": FeatureType.INTEGRAL,
              "avg_fee_1min": FeatureType.FRACTIONAL},
)


def build(outdir: str, acknowledge: bool = True) -> tuple[cdk.App, StudioStack, FeatureStoreStack]:
    """The feature store (named as in the app, so that its exports are named alike) and the Studio stack; a
    small stack stands in for the ingestion stack's access-log bucket."""
    app = cdk.App(outdir=outdir)
    settings = InfraSettings()
    logs_stack = cdk.Stack(app, "access-logs")
    access_logs = s3.Bucket(logs_stack, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED,
                            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
                            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
                            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
                            removal_policy=RemovalPolicy.RETAIN)
    cdk.Validations.of(logs_stack).acknowledge(cdk.Acknowledgment(
        id="AwsSolutions::AwsSolutions-S1", reason="test stand-in for the ingestion stack's access-log bucket"))
    feature_store = FeatureStoreStack(app, f"{settings.prefix}-feature-store", settings, [GROUP], access_logs)
    studio = StudioStack(app, f"{settings.prefix}-studio", settings, feature_group_names=[GROUP.name],
                         offline_bucket=feature_store.offline_bucket, offline_key=feature_store.key)
    acknowledge_findings(feature_store)
    if acknowledge:  # as infra/nag.py's acknowledge_findings does
        for rule, reason in STUDIO_ACKNOWLEDGED:
            cdk.Validations.of(studio).acknowledge(cdk.Acknowledgment(id=rule, reason=reason))
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))
    return app, studio, feature_store


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    app, studio, feature_store = build(str(tmp_path_factory.mktemp("cdk.out")))
    app.synth()  # cdk-nag runs as a validation plugin: an unacknowledged finding raises here
    return studio, feature_store


@pytest.fixture(scope="module")
def template(synthesized) -> Template:
    return Template.from_stack(synthesized[0])


def the(template: Template, resource_type: str) -> tuple[str, dict]:
    (item,) = template.find_resources(resource_type).items()
    return item


def logical_id(template: Template, resource_type: str, path_part: str) -> str:
    (found,) = [key for key, value in template.find_resources(resource_type).items()
                if path_part in key]
    return found


def statements(template: Template, policy_part: str) -> dict[str, dict]:
    (policy,) = [value for key, value in template.find_resources("AWS::IAM::Policy").items() if policy_part in key]
    return {statement.get("Sid"): statement for statement in policy["Properties"]["PolicyDocument"]["Statement"]}


def arn(service: str, resource: str) -> dict:
    """The Fn::Join CDK's format_arn renders for a literal resource part."""
    return {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":{service}:", {"Ref": "AWS::Region"}, ":",
                              {"Ref": "AWS::AccountId"}, f":{resource}"]]}


def test_every_acknowledgment_is_needed_and_enough(tmp_path) -> None:
    """Without the acknowledgments, synth fails with exactly the acknowledged findings, all in the Studio stack
    (read from the validation report CDK writes next to the templates)."""
    app, _studio, _feature_store = build(str(tmp_path), acknowledge=False)
    with pytest.raises(Exception, match="ValidationFailed"):
        app.synth()
    report = json.loads((tmp_path / "validation-report.json").read_text())
    findings = {f"{plugin['pluginName']}::{violation['ruleName']}": {
        construct["constructPath"] for construct in violation["violatingConstructs"]}
        for plugin in report["pluginReports"] for violation in plugin["violations"]}
    assert set(findings) == {rule for rule, _reason in STUDIO_ACKNOWLEDGED}
    assert all(path.startswith("chainfeat-studio/") for paths in findings.values() for path in paths)
    assert len(STUDIO_ACKNOWLEDGED) == len(set(STUDIO_ACKNOWLEDGED))
    assert all(len(reason) > 40 for _rule, reason in STUDIO_ACKNOWLEDGED)


def test_domain_is_vpc_only_with_iam_auth_in_the_isolated_subnets(template) -> None:
    vpc = logical_id(template, "AWS::EC2::VPC", "StudioVpc")
    role = logical_id(template, "AWS::IAM::Role", "StudioExecutionRole")
    group = logical_id(template, "AWS::EC2::SecurityGroup", "StudioSecurityGroup")
    subnets = sorted(key for key in template.find_resources("AWS::EC2::Subnet"))
    _domain_id, domain = the(template, "AWS::SageMaker::Domain")
    properties = domain["Properties"]
    assert properties["AppNetworkAccessType"] == "VpcOnly"
    assert properties["AuthMode"] == "IAM"
    assert properties["VpcId"] == {"Ref": vpc}
    assert sorted(subnet["Ref"] for subnet in properties["SubnetIds"]) == subnets and len(subnets) == 2
    settings = properties["DefaultUserSettings"]
    assert settings["ExecutionRole"] == {"Fn::GetAtt": [role, "Arn"]}
    assert settings["SecurityGroups"] == [{"Fn::GetAtt": [group, "GroupId"]}]


def test_user_profile_belongs_to_the_domain(template) -> None:
    domain_id, _domain = the(template, "AWS::SageMaker::Domain")
    template.has_resource_properties("AWS::SageMaker::UserProfile", {
        "DomainId": {"Fn::GetAtt": [domain_id, "DomainId"]}, "UserProfileName": "chainfeat-user"})


def test_vpc_has_no_route_out_only_the_endpoints_studio_needs(template) -> None:
    assert template.find_resources("AWS::EC2::NatGateway") == {}
    assert template.find_resources("AWS::EC2::InternetGateway") == {}
    template.resource_count_is("AWS::EC2::FlowLog", 1)
    endpoints = template.find_resources("AWS::EC2::VPCEndpoint")
    services = sorted(json.dumps(value["Properties"]["ServiceName"]) for value in endpoints.values())
    for service in ("sagemaker.api", "sagemaker.runtime", "sagemaker.featurestore-runtime", "sts", "logs", "athena",
                    "glue", ".s3"):
        assert any(service in name for name in services), (service, services)
    assert len(endpoints) == 8
    (gateway,) = [value for value in endpoints.values() if value["Properties"].get("VpcEndpointType") == "Gateway"]
    assert ".s3" in json.dumps(gateway["Properties"]["ServiceName"])
    # interface endpoints accept HTTPS from the Studio security group only
    studio_group = logical_id(template, "AWS::EC2::SecurityGroup", "StudioSecurityGroup")
    endpoint_group = logical_id(template, "AWS::EC2::SecurityGroup", "EndpointSecurityGroup")
    template.has_resource_properties("AWS::EC2::SecurityGroupIngress", {
        "GroupId": {"Fn::GetAtt": [endpoint_group, "GroupId"]}, "FromPort": 443, "ToPort": 443,
        "SourceSecurityGroupId": {"Fn::GetAtt": [studio_group, "GroupId"]}})
    template.has_resource_properties("AWS::EC2::SecurityGroupIngress", {
        "GroupId": {"Fn::GetAtt": [studio_group, "GroupId"]}, "IpProtocol": "-1",
        "SourceSecurityGroupId": {"Fn::GetAtt": [studio_group, "GroupId"]}})
    # no ingress from any address, anywhere
    inline = [rule for group in template.find_resources("AWS::EC2::SecurityGroup").values()
              for rule in group["Properties"].get("SecurityGroupIngress", [])]
    separate = [rule["Properties"] for rule in template.find_resources("AWS::EC2::SecurityGroupIngress").values()]
    assert separate and not [rule for rule in inline + separate if "CidrIp" in rule or "CidrIpv6" in rule]


def test_execution_role_reads_exactly_the_feature_group_offline_store_and_notebook(template, synthesized) -> None:
    role_id = logical_id(template, "AWS::IAM::Role", "StudioExecutionRole")
    role = template.find_resources("AWS::IAM::Role")[role_id]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "sagemaker.amazonaws.com"}
    assert "ManagedPolicyArns" not in role["Properties"]
    granted = statements(template, "StudioExecutionRole")
    assert granted["ReadFeatureGroups"]["Resource"] == arn("sagemaker", "feature-group/tx_minute_features")
    assert sorted(granted["ReadFeatureGroups"]["Action"]) == [
        "sagemaker:BatchGetRecord", "sagemaker:DescribeFeatureGroup", "sagemaker:GetRecord", "sagemaker:ListRecords"]

    # the offline store: the feature-store stack's bucket and key, imported
    bucket_import = {"Fn::ImportValue": "chainfeat-feature-store:ExportsOutputFnGetAttOfflineStoreA8EF6C00ArnB4DC5DBD"}
    assert granted["ReadOfflineStore"] == {"Sid": "ReadOfflineStore", "Effect": "Allow", "Action": "s3:GetObject",
                                           "Resource": {"Fn::Join": ["", [bucket_import, "/*"]]}}
    assert granted["ListOfflineStore"]["Resource"] == bucket_import
    key_import = granted["DecryptOfflineStore"]["Resource"]
    assert key_import["Fn::ImportValue"].startswith("chainfeat-feature-store:ExportsOutputFnGetAttFeatureStoreKey")
    assert sorted(granted["DecryptOfflineStore"]["Action"]) == ["kms:Decrypt", "kms:DescribeKey"]
    feature_store = Template.from_stack(synthesized[1])
    exported = {output["Export"]["Name"]: output["Value"] for output in feature_store.find_outputs("*").values()}
    bucket_id = logical_id(feature_store, "AWS::S3::Bucket", "OfflineStore")
    key_id = logical_id(feature_store, "AWS::KMS::Key", "FeatureStoreKey")
    assert exported[bucket_import["Fn::ImportValue"]] == {"Fn::GetAtt": [bucket_id, "Arn"]}
    assert exported[key_import["Fn::ImportValue"]] == {"Fn::GetAtt": [key_id, "Arn"]}

    # Athena: this stack's workgroup; the Glue catalog, database and this group's tables
    assert granted["QueryWithAthena"]["Resource"] == arn("athena", "workgroup/chainfeat-studio")
    assert granted["ReadFeatureStoreCatalog"]["Resource"] == [
        arn("glue", "catalog"), arn("glue", "database/sagemaker_featurestore"),
        arn("glue", "table/sagemaker_featurestore/tx_minute_features_*")]
    results = logical_id(template, "AWS::S3::Bucket", "AthenaResults")
    assert granted["WriteAthenaResults"]["Resource"] == {"Fn::Join": ["", [{"Fn::GetAtt": [results, "Arn"]},
                                                                           "/athena/*"]]}
    studio_key = logical_id(template, "AWS::KMS::Key", "StudioKey")
    assert granted["EncryptAthenaResults"]["Resource"] == {"Fn::GetAtt": [studio_key, "Arn"]}
    template.has_resource_properties("AWS::Athena::WorkGroup", {
        "Name": "chainfeat-studio", "WorkGroupConfiguration": Match.object_like({
            "EnforceWorkGroupConfiguration": True,
            "ResultConfiguration": {"OutputLocation": Match.any_value(), "EncryptionConfiguration": {
                "EncryptionOption": "SSE_KMS", "KmsKey": {"Fn::GetAtt": [studio_key, "Arn"]}}}})})

    # the notebook and the client code it imports: exactly those two asset objects
    notebook = granted["ReadNotebook"]
    assert notebook["Action"] == "s3:GetObject"
    (notebook_object, client_object) = [resource["Fn::Join"][1][-1] for resource in notebook["Resource"]]
    assert notebook_object.endswith(".ipynb") and client_object.endswith(".zip") and "*" not in json.dumps(notebook)
    # the client code is the feature-store client and what it imports, nothing else of the project
    asset_hash = client_object.removeprefix("/").removesuffix(".zip")
    staged = Path(cdk.Stage.of(synthesized[1]).outdir) / f"asset.{asset_hash}"
    shipped = sorted(str(path.relative_to(staged)) for path in staged.rglob("*.py"))
    assert "featurestore/client.py" in shipped and "retry.py" in shipped and "__init__.py" in shipped
    assert all(path.count("/") <= 1 and path.split("/")[0] in ("featurestore", path) for path in shipped), shipped

    # Studio itself: private spaces and their apps of this user only
    domain_id, _ = the(template, "AWS::SageMaker::Domain")
    for sid in ("StudioPrivateSpaces", "StudioPrivateSpaceApps"):
        condition = granted[sid]["Condition"]
        assert condition["StringEquals"] == {"sagemaker:SpaceSharingType": "Private"}
        assert "chainfeat-user" in json.dumps(condition["ArnLike"]["sagemaker:OwnerUserProfileArn"])
        assert {"Fn::GetAtt": [domain_id, "DomainId"]} in granted[sid]["Resource"]["Fn::Join"][1]
    assert granted["StudioListing"]["Resource"] == "*"
    assert sorted(granted["StudioListing"]["Action"]) == ["sagemaker:ListApps", "sagemaker:ListSpaces"]


def test_lifecycle_config_copies_the_notebook_into_the_users_jupyterlab(template) -> None:
    config_id, config = the(template, "AWS::SageMaker::StudioLifecycleConfig")
    assert config["Properties"]["StudioLifecycleConfigAppType"] == "JupyterLab"
    content = config["Properties"]["StudioLifecycleConfigContent"]["Fn::Base64"]["Fn::Join"][1]
    script = "".join(part if isinstance(part, str) else "<token>" for part in content)
    assert script.startswith("#!/bin/bash\n")
    assert "aws s3 cp" in script and "/home/sagemaker-user/chainfeat/read_feature_store.ipynb" in script
    assert re.search(r'"s3://<token>/[0-9a-f]{64}\.ipynb"', script), script
    _domain_id, domain = the(template, "AWS::SageMaker::Domain")
    lab = domain["Properties"]["DefaultUserSettings"]["JupyterLabAppSettings"]
    config_arn = {"Fn::GetAtt": [config_id, "StudioLifecycleConfigArn"]}
    assert lab["LifecycleConfigArns"] == [config_arn]
    assert lab["DefaultResourceSpec"]["LifecycleConfigArn"] == config_arn


def test_cleanup_provider_waits_with_a_step_functions_waiter(template) -> None:
    _machine_id, machine = the(template, "AWS::StepFunctions::StateMachine")
    definition = "".join(part for part in machine["Properties"]["DefinitionString"]["Fn::Join"][1]
                         if isinstance(part, str))
    # isComplete every minute for an hour: far past Lambda's 15 minutes, up to CloudFormation's custom-resource
    # limit (ServiceTimeout at most 3600 s)
    assert '"IntervalSeconds":60,"MaxAttempts":60,"BackoffRate":1' in definition
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"
    functions = template.find_resources("AWS::Lambda::Function")
    python = {value["Properties"]["Handler"]: value["Properties"] for value in functions.values()
              if value["Properties"]["Runtime"].startswith("python")}
    assert set(python) == {"handler.on_event", "handler.is_complete"}
    assert all(props["Runtime"] == "python3.14" for props in python.values())
    framework = [value["Properties"] for value in functions.values()
                 if value["Properties"]["Handler"].startswith("framework.")]
    assert sorted(props["Handler"] for props in framework) == [
        "framework.isComplete", "framework.onEvent", "framework.onTimeout"]
    on_event = next(props for props in framework if props["Handler"] == "framework.onEvent")
    user_functions = {key for key, value in functions.items() if value["Properties"]["Handler"].startswith("handler.")}
    assert {value["Fn::GetAtt"][0] for name, value in on_event["Environment"]["Variables"].items()
            if name.startswith("USER_")} == user_functions


def test_cleanup_code_asset_is_the_handler_folder(synthesized) -> None:
    studio, _ = synthesized
    outdir = studio.node.root.outdir
    staged = [entry for entry in os.listdir(outdir) if entry.startswith("asset.")
              and os.path.isfile(os.path.join(outdir, entry, "handler.py"))]
    assert staged, os.listdir(outdir)
    assert "__pycache__" not in os.listdir(os.path.join(outdir, staged[0]))


def test_custom_resources_are_deleted_in_the_order_studio_needs(template) -> None:
    domain_id, domain = the(template, "AWS::SageMaker::Domain")
    profile_id, _ = the(template, "AWS::SageMaker::UserProfile")
    apps_id, apps = the(template, "Custom::StudioApps")
    efs_id, efs = the(template, "Custom::StudioHomeEfs")
    provider = logical_id(template, "AWS::Lambda::Function", "frameworkonEvent")
    for resource in (apps, efs):
        assert resource["Properties"]["ServiceToken"] == {"Fn::GetAtt": [provider, "Arn"]}
        assert resource["Properties"]["ServiceTimeout"] == "3600"
    # StudioApps goes first: it depends on the domain and the user profile
    assert apps["Properties"]["DomainId"] == {"Fn::GetAtt": [domain_id, "DomainId"]}
    assert apps["Properties"]["UserProfileName"] == "chainfeat-user"
    assert {domain_id, profile_id} <= set(apps["DependsOn"])
    # StudioHomeEfs goes after the domain and before the VPC (its subnets, endpoints, flow log)
    assert efs_id in domain["DependsOn"]
    vpc = logical_id(template, "AWS::EC2::VPC", "StudioVpc")
    assert efs["Properties"]["VpcId"] == {"Ref": vpc}
    assert efs["Properties"]["Region"] == {"Ref": "AWS::Region"}
    assert vpc in efs["DependsOn"]
    assert set(template.find_resources("AWS::EC2::Subnet")) <= set(efs["DependsOn"])
    assert set(template.find_resources("AWS::EC2::VPCEndpoint")) <= set(efs["DependsOn"])


def test_cleanup_role_is_scoped_to_this_domain_this_vpc_and_sagemaker_file_systems(template) -> None:
    granted = statements(template, "StudioCleanupRoleDefaultPolicy")
    vpc = logical_id(template, "AWS::EC2::VPC", "StudioVpc")
    vpc_arn = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":ec2:", {"Ref": "AWS::Region"}, ":",
                                 {"Ref": "AWS::AccountId"}, ":vpc/", {"Ref": vpc}]]}
    assert granted["DeleteNfsGroupsInStudioVpc"]["Condition"] == {"ArnEquals": {"ec2:Vpc": vpc_arn}}
    assert granted["DeleteNfsGroupsInStudioVpc"]["Resource"] == arn("ec2", "security-group/*")
    assert granted["DeleteMountTargetInterfaces"]["Condition"] == {"ArnEquals": {"ec2:Vpc": vpc_arn}}
    assert granted["DeleteSageMakerEfs"]["Condition"] == {
        "Null": {"aws:ResourceTag/ManagedByAmazonSageMakerResource": "false"}}
    assert granted["DeleteSageMakerEfs"]["Resource"] == arn("elasticfilesystem", "file-system/*")
    assert sorted(granted["ListStudio"]["Action"]) == ["sagemaker:ListApps", "sagemaker:ListSpaces"]
    wildcard = [sid for sid, statement in granted.items() if statement["Resource"] == "*"]
    assert sorted(wildcard) == ["DescribeEfsAndGroups", "ListStudio"]
    assert all(action.split(":")[1].startswith(("Describe", "List"))
               for sid in wildcard for action in granted[sid]["Action"])
    domain_id, _ = the(template, "AWS::SageMaker::Domain")
    (apps_statement,) = statements(template, "StudioCleanupAppsPolicy").values()
    assert sorted(apps_statement["Action"]) == ["sagemaker:DeleteApp", "sagemaker:DeleteSpace"]
    for resource in apps_statement["Resource"]:
        assert {"Fn::GetAtt": [domain_id, "DomainId"]} in resource["Fn::Join"][1]


def test_only_data_is_retained(template) -> None:
    retained = {key: value["Type"] for key, value in template.to_json()["Resources"].items()
                if value.get("DeletionPolicy") == "Retain"}
    assert sorted(retained.values()) == ["AWS::KMS::Key", "AWS::S3::Bucket", "AWS::S3::Bucket"]
    template.has_resource("AWS::S3::Bucket", {"DeletionPolicy": "Retain", "Properties": Match.object_like({
        "BucketEncryption": {"ServerSideEncryptionConfiguration": [Match.object_like(
            {"ServerSideEncryptionByDefault": Match.object_like({"SSEAlgorithm": "aws:kms"})})]},
        "LoggingConfiguration": Match.object_like({"LogFilePrefix": "AthenaResults/"}),
    })})


def test_the_notebook_gets_its_offline_reads_and_athena_settings(synthesized, template, tmp_path) -> None:
    """Studio's notebook reads offline through Athena in this stack's workgroup, by configuration: the lifecycle
    script writes the settings file history.py reads, and the shipped code has the module and its SQL."""
    from connectors.featurestore.history import CONFIG_FILE, NotebookSettings

    studio, _feature_store = synthesized
    _config_id, config = the(template, "AWS::SageMaker::StudioLifecycleConfig")
    content = config["Properties"]["StudioLifecycleConfigContent"]["Fn::Base64"]["Fn::Join"][1]
    script = "".join(part if isinstance(part, str) else "us-east-1" if part == {"Ref": "AWS::Region"} else "<token>"
                     for part in content)
    written = re.search(rf"cat > /home/sagemaker-user/chainfeat/{re.escape(CONFIG_FILE)} <<'EOF'\n(.*?)\nEOF\n",
                        script, re.DOTALL)
    assert written, script
    (settings_file := tmp_path / CONFIG_FILE).write_text(written.group(1))
    _workgroup_id, workgroup = the(template, "AWS::Athena::WorkGroup")
    settings = NotebookSettings.load(environ={}, directory=tmp_path)
    assert (settings.offline, settings.athena_workgroup, settings.region) == (
        "athena", workgroup["Properties"]["Name"], "us-east-1")
    assert settings_file.exists()

    staged = Path(studio.node.root.outdir) / studio.client_code.asset_path
    shipped = {str(path.relative_to(staged)) for path in staged.rglob("*") if path.is_file()}
    assert {"featurestore/history.py", "featurestore/glue.py", "featurestore/last_hour.sql",
            "featurestore/client.py"} <= shipped
    assert not any(path.startswith("featurestore/local/") for path in shipped)  # DuckDB's side stays home
