"""Studio: a VPC-only SageMaker Studio domain with one user profile that may read the feature groups (online,
and offline through Athena) and nothing else of the project; the notebook copied into the user's home by a
JupyterLab lifecycle configuration; and a clean-up custom resource so that the stack can be deleted.

Deletion order, enforced with dependencies:
  StudioApps (custom)  -> user profile -> domain -> StudioHomeEfs (custom) -> VPC
StudioApps deletes the user's apps and private spaces and waits for them (CloudFormation cannot delete a user
profile that still has them); StudioHomeEfs deletes the home EFS file system and the two NFS security groups
SageMaker created for the domain, which CloudFormation leaves behind and which block the VPC's deletion.
Both run on one Provider with an isComplete handler: a Step Functions waiter polls past Lambda's 15 minutes.
"""

from __future__ import annotations

import json

from aws_cdk import ArnFormat, CustomResource, Duration, Fn, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from connectors.featurestore.history import CONFIG_FILE
from infra import REPO_ROOT
from infra.settings import InfraSettings
from infra.stacks.ingestion import secure_bucket

NOTEBOOK = REPO_ROOT / "notebooks" / "read_feature_store.ipynb"
NOTEBOOK_SETTINGS = CONFIG_FILE  # the notebook's settings file, next to it
CLEANUP_CODE = REPO_ROOT / "infra" / "studio_cleanup"
HOME = "/home/sagemaker-user"
# A CloudFormation custom resource waits at most one hour for its answer (ServiceTimeout is 1..3600 s; the
# Provider documents the same maximum): the waiter polls every minute for that hour. A deletion that needs
# longer fails and is retried by deleting the stack again; every clean-up step is idempotent.
CLEANUP_TIMEOUT = Duration.hours(1)
CLEANUP_INTERVAL = Duration.minutes(1)
SAGEMAKER_EFS_TAG = "ManagedByAmazonSageMakerResource"
# Interface endpoints a VPC-only Studio needs to use the feature store (S3 is a gateway endpoint).
ENDPOINTS = {
    "SageMakerApi": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_API,
    "SageMakerRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_RUNTIME,
    "FeatureStoreRuntime": ec2.InterfaceVpcEndpointAwsService.SAGEMAKER_FEATURESTORE_RUNTIME,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Athena": ec2.InterfaceVpcEndpointAwsService.ATHENA,
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
}


def glue_table_name_pattern(feature_group_name: str) -> str:
    """Feature Store names a group's Glue table `<group>_<creation epoch>`, lower case, '-' as '_'."""
    return f"{feature_group_name.lower().replace('-', '_')}_*"


class StudioStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, settings: InfraSettings, *,
                 feature_group_names: list[str], offline_bucket: s3.IBucket, offline_key: kms.IKey,
                 **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        prefix = settings.prefix
        self.user_profile_name = f"{prefix}-user"
        isolated = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)

        # -- network: isolated subnets, no NAT; AWS APIs through VPC endpoints only --------------------------
        self.vpc = ec2.Vpc(self, "StudioVpc", max_azs=2, nat_gateways=0,
                           subnet_configuration=[ec2.SubnetConfiguration(
                               name="studio", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=22)])
        flow_logs = logs.LogGroup(self, "StudioVpcFlowLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=RemovalPolicy.DESTROY)
        self.vpc.add_flow_log("FlowLogs", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs))
        self.security_group = ec2.SecurityGroup(
            self, "StudioSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="chainfeat Studio apps: traffic among themselves, HTTPS to the VPC endpoints")
        self.security_group.add_ingress_rule(self.security_group, ec2.Port.all_traffic(),
                                             "Studio apps and kernels of this domain")
        self.security_group.add_egress_rule(self.security_group, ec2.Port.all_traffic(),
                                            "Studio apps and kernels of this domain")
        # The S3 gateway endpoint is reached through S3's public addresses (a prefix list whose id is per
        # region): HTTPS to any address, which in these isolated subnets routes only to the endpoints.
        self.security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443),
                                            "HTTPS to the interface endpoints and the S3 gateway endpoint")
        endpoint_security_group = ec2.SecurityGroup(
            self, "EndpointSecurityGroup", vpc=self.vpc, allow_all_outbound=False,
            description="chainfeat Studio VPC endpoints: HTTPS from the Studio apps only")
        endpoint_security_group.add_ingress_rule(self.security_group, ec2.Port.tcp(443), "HTTPS from Studio apps")
        for name, service in ENDPOINTS.items():
            self.vpc.add_interface_endpoint(name, service=service, subnets=isolated, open=False,
                                            security_groups=[endpoint_security_group], private_dns_enabled=True)
        self.vpc.add_gateway_endpoint("S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[isolated])

        # -- Athena: a workgroup of its own whose results are encrypted in a bucket of this stack ----------------
        self.key = kms.Key(self, "StudioKey", enable_key_rotation=True,
                           description="chainfeat: Studio's Athena query results")
        access_logs = s3.Bucket(
            self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))], removal_policy=RemovalPolicy.RETAIN,
        )
        self.athena_results = secure_bucket(self, "AthenaResults", self.key, access_logs, lifecycle_rules=[
            s3.LifecycleRule(expiration=Duration.days(30), noncurrent_version_expiration=Duration.days(7),
                             abort_incomplete_multipart_upload_after=Duration.days(1)),
        ])
        self.workgroup = athena.CfnWorkGroup(
            self, "AthenaWorkGroup", name=f"{prefix}-studio", recursive_delete_option=True,
            description="chainfeat Studio: queries over the feature store's offline store",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True, publish_cloud_watch_metrics_enabled=True,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=self.athena_results.s3_url_for_object("athena/"),
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=self.key.key_arn)),
            ),
        )

        # -- the notebook, and the lifecycle configuration that copies it into the user's home ------------------
        self.notebook = s3_assets.Asset(self, "Notebook", path=str(NOTEBOOK))
        notebook_url = f"s3://{self.notebook.s3_bucket_name}/{self.notebook.s3_object_key}"
        # The notebook imports the project's feature-store client and its offline reads (boto3 only, the SQL they
        # run beside them): ship that package next to it.
        self.client_code = s3_assets.Asset(self, "NotebookClientCode", path=str(REPO_ROOT / "connectors"),
                                           exclude=["*", "!__init__.py", "!retry.py", "!featurestore",
                                                    "!featurestore/*.py", "!featurestore/*.sql", "__pycache__"])
        # ... and its configuration (connectors/featurestore/history.py): offline reads through Athena, in this
        # stack's workgroup. Rewritten at every start, so it follows the stack; environment variables override it.
        notebook_settings = json.dumps({"offline": "athena", "athena_workgroup": self.workgroup.name,
                                        "region": self.region})
        client_url = f"s3://{self.client_code.s3_bucket_name}/{self.client_code.s3_object_key}"
        script = "\n".join([
            "#!/bin/bash",
            "# chainfeat: copy the feature-store notebook into the home directory once (later edits are kept)",
            "# and refresh the client code it imports (connectors/) next to it",
            "set -eu",
            f"target={HOME}/chainfeat/read_feature_store.ipynb",
            'mkdir -p "$(dirname "$target")"',
            'if [ ! -f "$target" ]; then',
            f'  aws s3 cp --only-show-errors --region {self.region} "{notebook_url}" "$target"',
            "fi",
            f'aws s3 cp --only-show-errors --region {self.region} "{client_url}" /tmp/chainfeat-connectors.zip',
            f'rm -rf {HOME}/chainfeat/connectors && python3 -m zipfile -e /tmp/chainfeat-connectors.zip '
            f'{HOME}/chainfeat/connectors',
            f"cat > {HOME}/chainfeat/{NOTEBOOK_SETTINGS} <<'EOF'",
            notebook_settings,
            "EOF",
            "",
        ])
        self.lifecycle_config = sagemaker.CfnStudioLifecycleConfig(
            self, "CopyNotebook", studio_lifecycle_config_name=f"{prefix}-copy-notebook",
            studio_lifecycle_config_app_type="JupyterLab", studio_lifecycle_config_content=Fn.base64(script))

        # -- the execution role: read the feature groups, the offline store, query it with Athena -------------
        self.role = iam.Role(self, "StudioExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description="chainfeat Studio user: reads the feature store (online and offline)")
        self._grant_feature_store(feature_group_names, offline_bucket, offline_key)

        # -- the domain and its user ---------------------------------------------------------------------------
        jupyter_lab = sagemaker.CfnDomain.JupyterLabAppSettingsProperty(
            lifecycle_config_arns=[self.lifecycle_config.attr_studio_lifecycle_config_arn],
            default_resource_spec=sagemaker.CfnDomain.ResourceSpecProperty(
                instance_type="ml.t3.medium",
                lifecycle_config_arn=self.lifecycle_config.attr_studio_lifecycle_config_arn),
        )
        self.domain = sagemaker.CfnDomain(
            self, "StudioDomain", domain_name=f"{prefix}-studio", auth_mode="IAM",
            app_network_access_type="VpcOnly", vpc_id=self.vpc.vpc_id,
            subnet_ids=[subnet.subnet_id for subnet in self.vpc.isolated_subnets],
            default_user_settings=sagemaker.CfnDomain.UserSettingsProperty(
                execution_role=self.role.role_arn, security_groups=[self.security_group.security_group_id],
                jupyter_lab_app_settings=jupyter_lab, studio_web_portal="ENABLED", default_landing_uri="studio::"),
        )
        self.user_profile = sagemaker.CfnUserProfile(self, "StudioUser", domain_id=self.domain.attr_domain_id,
                                                     user_profile_name=self.user_profile_name)
        self._grant_studio_apps()

        # -- clean-up on deletion -------------------------------------------------------------------------------
        provider = self._cleanup_provider()
        home_efs = CustomResource(self, "StudioHomeEfs", service_token=provider.service_token,
                                  resource_type="Custom::StudioHomeEfs", service_timeout=CLEANUP_TIMEOUT,
                                  properties={"VpcId": self.vpc.vpc_id, "Region": self.region})
        home_efs.node.add_dependency(self.vpc)  # deleted before anything of the VPC
        self.domain.node.add_dependency(home_efs)  # ... and after the domain
        apps = CustomResource(self, "StudioApps", service_token=provider.service_token,
                              resource_type="Custom::StudioApps", service_timeout=CLEANUP_TIMEOUT,
                              properties={"DomainId": self.domain.attr_domain_id,
                                          "UserProfileName": self.user_profile_name})
        apps.node.add_dependency(self.domain, self.user_profile)  # deleted first
        apps.node.add_dependency(self.cleanup_apps_policy)  # its rights go after it
        self.cleanup = {"apps": apps, "home_efs": home_efs}

    # -- IAM ------------------------------------------------------------------------------------------------

    def _sagemaker_arn(self, resource: str, name: str) -> str:
        return self.format_arn(service="sagemaker", resource=resource, resource_name=name)

    def _grant_feature_store(self, feature_group_names: list[str], offline_bucket: s3.IBucket,
                             offline_key: kms.IKey) -> None:
        role = self.role
        # Online store: the notebook's reads. SageMaker writes feature-group ARNs in lower case.
        # ListRecords: the notebook's fallback when no recent minute is online (FeatureStoreClient).
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadFeatureGroups",
            actions=["sagemaker:DescribeFeatureGroup", "sagemaker:GetRecord", "sagemaker:BatchGetRecord",
                     "sagemaker:ListRecords"],
            resources=[self._sagemaker_arn("feature-group", name.lower()) for name in feature_group_names],
        ))
        # Offline store: read its objects (directly, and through Athena, which reads with the caller's rights).
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadOfflineStore", actions=["s3:GetObject"], resources=[offline_bucket.arn_for_objects("*")]))
        role.add_to_policy(iam.PolicyStatement(
            sid="ListOfflineStore", actions=["s3:ListBucket", "s3:GetBucketLocation"],
            resources=[offline_bucket.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            sid="DecryptOfflineStore", actions=["kms:Decrypt", "kms:DescribeKey"], resources=[offline_key.key_arn]))
        # Athena in this stack's workgroup, over the Glue tables Feature Store registered for these groups.
        role.add_to_policy(iam.PolicyStatement(
            sid="QueryWithAthena",
            actions=["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults",
                     "athena:StopQueryExecution", "athena:GetWorkGroup"],
            resources=[self.format_arn(service="athena", resource="workgroup", resource_name=self.workgroup.name)],
        ))
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadFeatureStoreCatalog",
            actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
            resources=[
                self.format_arn(service="glue", resource="catalog"),
                self.format_arn(service="glue", resource="database", resource_name="sagemaker_featurestore"),
                *[self.format_arn(service="glue", resource="table",
                                  resource_name=f"sagemaker_featurestore/{glue_table_name_pattern(name)}")
                  for name in feature_group_names],
            ],
        ))
        # Athena writes the results with the caller's rights (encrypted with this stack's key) and reads them back.
        role.add_to_policy(iam.PolicyStatement(
            sid="WriteAthenaResults",
            actions=["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
            resources=[self.athena_results.arn_for_objects("athena/*")]))
        role.add_to_policy(iam.PolicyStatement(
            sid="ListAthenaResults", actions=["s3:ListBucket", "s3:GetBucketLocation", "s3:ListBucketMultipartUploads"],
            resources=[self.athena_results.bucket_arn]))
        role.add_to_policy(iam.PolicyStatement(
            sid="EncryptAthenaResults", actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
            resources=[self.key.key_arn]))
        # The notebook: exactly the asset object the lifecycle configuration copies.
        role.add_to_policy(iam.PolicyStatement(
            sid="ReadNotebook", actions=["s3:GetObject"],
            resources=[self.notebook.bucket.arn_for_objects(self.notebook.s3_object_key),
                       self.client_code.bucket.arn_for_objects(self.client_code.s3_object_key)]))

    def _grant_studio_apps(self) -> None:
        """What the Studio UI does with the user's credentials (the execution role in IAM mode) to run the
        notebook: describe the domain and the user, create a private JupyterLab space and its app, stop them."""
        domain_id = self.domain.attr_domain_id
        user_arn = self._sagemaker_arn("user-profile", f"{domain_id}/{self.user_profile_name}")
        role = self.role
        role.add_to_policy(iam.PolicyStatement(
            sid="StudioListing", actions=["sagemaker:ListApps", "sagemaker:ListSpaces"], resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="StudioDescribe",
            actions=["sagemaker:DescribeDomain", "sagemaker:DescribeUserProfile", "sagemaker:DescribeSpace",
                     "sagemaker:DescribeApp"],
            resources=[self._sagemaker_arn("domain", domain_id), user_arn,
                       self._sagemaker_arn("space", f"{domain_id}/*"), self._sagemaker_arn("app", f"{domain_id}/*")],
        ))
        owner_is_this_user = {"ArnLike": {"sagemaker:OwnerUserProfileArn": user_arn},
                              "StringEquals": {"sagemaker:SpaceSharingType": "Private"}}
        role.add_to_policy(iam.PolicyStatement(
            sid="StudioPrivateSpaces",
            actions=["sagemaker:CreateSpace", "sagemaker:UpdateSpace", "sagemaker:DeleteSpace"],
            resources=[self._sagemaker_arn("space", f"{domain_id}/*")], conditions=owner_is_this_user))
        role.add_to_policy(iam.PolicyStatement(
            sid="StudioPrivateSpaceApps", actions=["sagemaker:CreateApp", "sagemaker:DeleteApp"],
            resources=[self._sagemaker_arn("app", f"{domain_id}/*")], conditions=owner_is_this_user))
        # Studio tags what it creates; tagging is allowed only as part of a create call.
        role.add_to_policy(iam.PolicyStatement(
            sid="StudioTagOnCreate", actions=["sagemaker:AddTags"],
            resources=[self._sagemaker_arn("space", f"{domain_id}/*"), self._sagemaker_arn("app", f"{domain_id}/*")],
            conditions={"Null": {"sagemaker:TaggingAction": "false"}}))
        # The apps' own logs (Studio writes them to this log group).
        role.add_to_policy(iam.PolicyStatement(
            sid="StudioAppLogs",
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[self.format_arn(service="logs", resource="log-group", resource_name="/aws/sagemaker/studio:*",
                                       arn_format=ArnFormat.COLON_RESOURCE_NAME)]))

    # -- the clean-up custom resource's provider -------------------------------------------------------------

    def _cleanup_provider(self) -> cr.Provider:
        domain_id = self.domain.attr_domain_id
        log_group = logs.LogGroup(self, "StudioCleanupLogs", retention=logs.RetentionDays.ONE_MONTH,
                                  removal_policy=RemovalPolicy.DESTROY)
        role = iam.Role(self, "StudioCleanupRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description="chainfeat Studio clean-up: the user's apps and spaces, the domain's home EFS")
        role.add_to_policy(iam.PolicyStatement(
            sid="Logs", actions=["logs:CreateLogStream", "logs:PutLogEvents"], resources=[log_group.log_group_arn]))
        role.add_to_policy(iam.PolicyStatement(
            sid="ListStudio", actions=["sagemaker:ListApps", "sagemaker:ListSpaces"], resources=["*"]))
        # A policy of its own: it names the domain, which depends (through StudioHomeEfs) on the functions,
        # so it cannot be part of what the functions depend on. StudioApps depends on it instead.
        self.cleanup_apps_policy = iam.Policy(self, "StudioCleanupAppsPolicy", roles=[role], statements=[
            iam.PolicyStatement(
                sid="DeleteStudioAppsAndSpaces", actions=["sagemaker:DeleteApp", "sagemaker:DeleteSpace"],
                resources=[self._sagemaker_arn("app", f"{domain_id}/*"),
                           self._sagemaker_arn("space", f"{domain_id}/*")])])
        role.add_to_policy(iam.PolicyStatement(
            sid="DescribeEfsAndGroups",
            actions=["elasticfilesystem:DescribeFileSystems", "elasticfilesystem:DescribeMountTargets",
                     "ec2:DescribeSecurityGroups"],
            resources=["*"]))
        role.add_to_policy(iam.PolicyStatement(
            sid="DeleteSageMakerEfs",
            actions=["elasticfilesystem:DeleteMountTarget", "elasticfilesystem:DeleteFileSystem"],
            resources=[self.format_arn(service="elasticfilesystem", resource="file-system", resource_name="*")],
            conditions={"Null": {f"aws:ResourceTag/{SAGEMAKER_EFS_TAG}": "false"}}))
        vpc_arn = self.format_arn(service="ec2", resource="vpc", resource_name=self.vpc.vpc_id)
        role.add_to_policy(iam.PolicyStatement(
            sid="DeleteNfsGroupsInStudioVpc",
            actions=["ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:DeleteSecurityGroup"],
            resources=[self.format_arn(service="ec2", resource="security-group", resource_name="*")],
            conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}}))
        # EFS deletes a mount target's network interface with the caller's rights.
        role.add_to_policy(iam.PolicyStatement(
            sid="DeleteMountTargetInterfaces", actions=["ec2:DeleteNetworkInterface"],
            resources=[self.format_arn(service="ec2", resource="network-interface", resource_name="*")],
            conditions={"ArnEquals": {"ec2:Vpc": vpc_arn}}))

        code = lambda_.Code.from_asset(str(CLEANUP_CODE), exclude=["__pycache__", "*.pyc"])

        def handler(construct_id: str, entry: str) -> lambda_.Function:
            function = lambda_.Function(
                self, construct_id, runtime=lambda_.Runtime.PYTHON_3_14, handler=f"handler.{entry}", code=code,
                role=role, log_group=log_group, timeout=Duration.minutes(5), memory_size=256,
                description=f"chainfeat Studio clean-up: {entry}")
            function.node.add_dependency(role)  # its policy, too: the handler must not run before it exists
            return function

        # The framework's functions: onEvent starts the waiter; isComplete and onTimeout are called by it.
        # Two roles, as the Provider wants them: one role for all three would make the waiter and isComplete's
        # role policy depend on each other (a circular dependency in the template).
        framework_logs = logs.LogGroup(self, "StudioCleanupProviderLogs", retention=logs.RetentionDays.ONE_MONTH,
                                       removal_policy=RemovalPolicy.DESTROY)
        framework_roles = []
        for construct_id, what in (("StudioCleanupOnEventRole", "starts the waiter"),
                                   ("StudioCleanupWaiterRole", "isComplete and onTimeout")):
            framework_role = iam.Role(self, construct_id, assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                                      description=f"chainfeat Studio clean-up: CDK provider framework, {what}")
            framework_role.add_to_policy(iam.PolicyStatement(
                sid="Logs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[framework_logs.log_group_arn]))
            framework_roles.append(framework_role)
        waiter_logs = logs.LogGroup(self, "StudioCleanupWaiterLogs", retention=logs.RetentionDays.ONE_MONTH,
                                    removal_policy=RemovalPolicy.DESTROY)
        return cr.Provider(
            self, "StudioCleanupProvider",
            on_event_handler=handler("StudioCleanupOnEvent", "on_event"),
            is_complete_handler=handler("StudioCleanupIsComplete", "is_complete"),
            query_interval=CLEANUP_INTERVAL, total_timeout=CLEANUP_TIMEOUT,
            framework_on_event_role=framework_roles[0], framework_complete_and_timeout_role=framework_roles[1],
            log_group=framework_logs,
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(destination=waiter_logs, level=sfn.LogLevel.ALL,
                                                           include_execution_data=False),
        )
