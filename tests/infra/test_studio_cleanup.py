"""The Studio clean-up custom resource (infra/studio_cleanup/handler.py), run as the CDK Provider framework
runs it: on_event, then is_complete with on_event's result merged into the event, until complete.

EFS and EC2 are moto's server (boto3 reaches it through AWS_ENDPOINT_URL, as the handler's lazily created
clients would reach AWS). moto does not implement SageMaker's ListApps/DeleteApp/ListSpaces/DeleteSpace,
so the SageMaker client is a botocore Stubber with the responses Studio gives."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from infra.studio_cleanup import handler

REGION = "us-east-1"
DOMAIN = "d-abc123xyz789"
USER = "chainfeat-user"
DOMAIN_ARN = f"arn:aws:sagemaker:{REGION}:123456789012:domain/{DOMAIN}"


def run_provider(event: dict[str, Any], max_polls: int = 10) -> list[bool]:
    """on_event, then is_complete until complete, the way the Provider framework chains them."""
    result = handler.on_event(event)
    assert result["PhysicalResourceId"] == event["PhysicalResourceId"]  # never changed on Delete
    waiting = {**event, **result}
    polls = []
    for _ in range(max_polls):
        response = handler.is_complete(waiting)
        assert set(response) == {"IsComplete"}  # Data is not allowed with IsComplete false
        polls.append(response["IsComplete"])
        if response["IsComplete"]:
            return polls
    raise AssertionError(f"not complete after {max_polls} polls: {polls}")


def delete_event(resource_type: str, properties: dict[str, str], physical_id: str) -> dict[str, Any]:
    return {"RequestType": "Delete", "ResourceType": resource_type, "PhysicalResourceId": physical_id,
            "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
                                   **properties},
            "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/chainfeat-studio/1",
            "RequestId": "r-1", "LogicalResourceId": "Cleanup"}


# -- Create / Update -------------------------------------------------------------------------------------

@pytest.mark.parametrize("resource_type, properties, expected", [
    ("Custom::StudioApps", {"DomainId": DOMAIN, "UserProfileName": USER}, f"studio-apps:{DOMAIN}:{USER}"),
    ("Custom::StudioHomeEfs", {"VpcId": "vpc-1", "Region": REGION}, "studio-home-efs:vpc-1"),
])
def test_create_and_update_do_nothing_and_keep_a_stable_physical_id(resource_type, properties, expected) -> None:
    handler.use_clients()  # no client may be created: nothing is called
    for request in ("Create", "Update"):
        event = {"RequestType": request, "ResourceType": resource_type, "ResourceProperties": properties,
                 "PhysicalResourceId": expected}
        assert handler.on_event(event) == {"PhysicalResourceId": expected}
        assert handler.is_complete({**event, "PhysicalResourceId": expected}) == {"IsComplete": True}
    assert handler._clients == {}


def test_an_unknown_resource_type_fails_loudly() -> None:
    with pytest.raises(ValueError, match="unknown resource type"):
        handler.on_event({"RequestType": "Create", "ResourceType": "Custom::Other", "ResourceProperties": {}})


# -- SageMaker apps and spaces (Stubber) -------------------------------------------------------------------

@pytest.fixture
def sagemaker() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("sagemaker", region_name=REGION, aws_access_key_id="test", aws_secret_access_key="test")
    with Stubber(client) as stubber:
        handler.use_clients(sagemaker=client)
        yield client, stubber
        stubber.assert_no_pending_responses()
    handler.use_clients()


def user_app(app_type: str, name: str, status: str) -> dict[str, Any]:
    return {"DomainId": DOMAIN, "UserProfileName": USER, "AppType": app_type, "AppName": name, "Status": status}


def space_app(space: str, app_type: str, name: str, status: str) -> dict[str, Any]:
    return {"DomainId": DOMAIN, "SpaceName": space, "AppType": app_type, "AppName": name, "Status": status}


def space(name: str, owner: str, status: str = "InService") -> dict[str, Any]:
    return {"DomainId": DOMAIN, "SpaceName": name, "Status": status,
            "OwnershipSettingsSummary": {"OwnerUserProfileName": owner},
            "SpaceSharingSettingsSummary": {"SharingType": "Private"}}


def expect_listing(stubber: Stubber, spaces: list[dict], user_apps: list[dict],
                   apps_by_space: dict[str, list[dict]], deletes: dict[str, list[dict]] | None = None) -> None:
    """The calls of one pass, in order: ListSpaces, the user's apps (and their deletions), then per owned space
    its apps (and their deletions). ``deletes`` maps "user" or a space name to the expected DeleteApp params."""
    deletes = deletes or {}
    stubber.add_response("list_spaces", {"Spaces": spaces}, {"DomainIdEquals": DOMAIN})
    stubber.add_response("list_apps", {"Apps": user_apps}, {"DomainIdEquals": DOMAIN, "UserProfileNameEquals": USER})
    for params in deletes.get("user", []):
        stubber.add_response("delete_app", {}, params)
    for name, apps in apps_by_space.items():
        stubber.add_response("list_apps", {"Apps": apps}, {"DomainIdEquals": DOMAIN, "SpaceNameEquals": name})
        for params in deletes.get(name, []):
            stubber.add_response("delete_app", {}, params)


def test_delete_removes_the_users_apps_and_spaces_and_waits_until_they_are_gone(sagemaker) -> None:
    _client, stubber = sagemaker
    mine, theirs = space("chainfeat-user-space", USER), space("someone-elses-space", "another-user")
    # on_event: the user's live apps are deleted, Deleted and Failed apps are left alone (a Failed app cannot
    # be deleted and does not block the domain), the app in the user's private space is deleted; the space
    # itself must wait for its app. The other user's space is never listed for apps nor deleted.
    expect_listing(stubber, [mine, theirs],
                   [user_app("JupyterServer", "default", "InService"), user_app("KernelGateway", "kg", "Deleted"),
                    user_app("KernelGateway", "broken", "Failed")],
                   {"chainfeat-user-space": [space_app("chainfeat-user-space", "JupyterLab", "default", "InService")]},
                   deletes={"user": [{"DomainId": DOMAIN, "UserProfileName": USER, "AppType": "JupyterServer",
                                      "AppName": "default"}],
                            "chainfeat-user-space": [{"DomainId": DOMAIN, "SpaceName": "chainfeat-user-space",
                                                      "AppType": "JupyterLab", "AppName": "default"}]})
    # is_complete 1: both apps still Deleting -> not complete, nothing deleted twice.
    expect_listing(stubber, [mine, theirs], [user_app("JupyterServer", "default", "Deleting")],
                   {"chainfeat-user-space": [space_app("chainfeat-user-space", "JupyterLab", "default", "Deleting")]})
    # is_complete 2: apps Deleted -> the space is deleted, and waited for.
    expect_listing(stubber, [mine, theirs], [user_app("JupyterServer", "default", "Deleted")],
                   {"chainfeat-user-space": [space_app("chainfeat-user-space", "JupyterLab", "default", "Deleted")]})
    stubber.add_response("delete_space", {}, {"DomainId": DOMAIN, "SpaceName": "chainfeat-user-space"})
    # is_complete 3: the space is Deleting.
    expect_listing(stubber, [space("chainfeat-user-space", USER, "Deleting"), theirs], [], {"chainfeat-user-space": []})
    # is_complete 4: the user's space is gone; the other user's space is still there, untouched.
    expect_listing(stubber, [theirs], [user_app("JupyterServer", "default", "Deleted")], {})

    polls = run_provider(delete_event("Custom::StudioApps", {"DomainId": DOMAIN, "UserProfileName": USER},
                                      f"studio-apps:{DOMAIN}:{USER}"))
    assert polls == [False, False, False, True]


def test_an_app_or_space_already_deleted_counts_as_deleted(sagemaker) -> None:
    _client, stubber = sagemaker
    mine = space("chainfeat-user-space", USER)
    # The listing is stale: the app was deleted meanwhile (DeleteApp answers ResourceNotFound), the space's app
    # is gone and its DeleteSpace answers with a "does not exist" validation error.
    stubber.add_response("list_spaces", {"Spaces": [mine]}, {"DomainIdEquals": DOMAIN})
    stubber.add_response("list_apps", {"Apps": [user_app("JupyterServer", "default", "InService")]},
                         {"DomainIdEquals": DOMAIN, "UserProfileNameEquals": USER})
    stubber.add_client_error("delete_app", "ResourceNotFound", "App does not exist", 400)
    stubber.add_response("list_apps", {"Apps": []},
                         {"DomainIdEquals": DOMAIN, "SpaceNameEquals": "chainfeat-user-space"})
    stubber.add_client_error("delete_space", "ValidationException",
                             f"Space arn:aws:sagemaker:{REGION}:123456789012:space/{DOMAIN}/x does not exist", 400)
    expect_listing(stubber, [], [], {})

    assert run_provider(delete_event("Custom::StudioApps", {"DomainId": DOMAIN, "UserProfileName": USER},
                                     f"studio-apps:{DOMAIN}:{USER}")) == [True]


def test_an_app_not_yet_deletable_is_retried_and_other_errors_raise(sagemaker) -> None:
    _client, stubber = sagemaker
    expect_listing(stubber, [], [user_app("JupyterServer", "default", "Pending")], {})
    stubber.add_client_error("delete_app", "ResourceInUse", "App is Pending", 400)
    assert handler.is_complete(delete_event("Custom::StudioApps", {"DomainId": DOMAIN, "UserProfileName": USER},
                                            "p")) == {"IsComplete": False}
    expect_listing(stubber, [], [user_app("JupyterServer", "default", "InService")], {})
    stubber.add_client_error("delete_app", "AccessDeniedException", "not allowed", 403)
    with pytest.raises(Exception, match="AccessDenied"):
        handler.is_complete(delete_event("Custom::StudioApps", {"DomainId": DOMAIN, "UserProfileName": USER}, "p"))


def test_list_calls_are_paginated(sagemaker) -> None:
    _client, stubber = sagemaker
    stubber.add_response("list_spaces", {"Spaces": [], "NextToken": "s2"}, {"DomainIdEquals": DOMAIN})
    stubber.add_response("list_spaces", {"Spaces": [space("chainfeat-user-space", USER, "Deleting")]},
                         {"DomainIdEquals": DOMAIN, "NextToken": "s2"})
    stubber.add_response("list_apps", {"Apps": [], "NextToken": "a2"},
                         {"DomainIdEquals": DOMAIN, "UserProfileNameEquals": USER})
    stubber.add_response("list_apps", {"Apps": [user_app("JupyterServer", "default", "Deleted")]},
                         {"DomainIdEquals": DOMAIN, "UserProfileNameEquals": USER, "NextToken": "a2"})
    stubber.add_response("list_apps", {"Apps": []}, {"DomainIdEquals": DOMAIN, "SpaceNameEquals": ANY})
    # the space on the second page is found (and still Deleting: not complete)
    assert handler.sweep_studio_apps(DOMAIN, USER) is False


# -- the home EFS and the NFS security groups (moto server) --------------------------------------------------

@pytest.fixture
def aws(moto_url: str, monkeypatch) -> Iterator[dict[str, Any]]:
    """boto3 pointed at moto through the environment, as the handler's lazy clients are."""
    for name, value in {"AWS_ENDPOINT_URL": moto_url, "AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "test",
                        "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    handler.use_clients()
    yield {"ec2": boto3.client("ec2"), "efs": boto3.client("efs")}
    handler.use_clients()


def make_vpc(ec2, cidr: str) -> tuple[str, list[str]]:
    vpc_id = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    base = cidr.rsplit(".", 2)[0]
    subnets = [ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"{base}.{index * 16}.0/20",
                                 AvailabilityZone=f"{REGION}{zone}")["Subnet"]["SubnetId"]
               for index, zone in enumerate("ab")]
    return vpc_id, subnets


def make_nfs_groups(ec2, vpc_id: str, domain: str) -> tuple[str, str]:
    """What SageMaker creates for a domain's home EFS: two groups whose NFS rules reference each other."""
    inbound = ec2.create_security_group(VpcId=vpc_id, GroupName=f"security-group-for-inbound-nfs-{domain}",
                                        Description=f"[DO NOT DELETE] inbound NFS for {domain}")["GroupId"]
    outbound = ec2.create_security_group(VpcId=vpc_id, GroupName=f"security-group-for-outbound-nfs-{domain}",
                                         Description=f"[DO NOT DELETE] outbound NFS for {domain}")["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=inbound, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": outbound}]}])
    ec2.authorize_security_group_egress(GroupId=outbound, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 2049, "ToPort": 2049, "UserIdGroupPairs": [{"GroupId": inbound}]}])
    return inbound, outbound


def make_file_system(efs, token: str, tags: dict[str, str], subnets: list[str], group: str | None) -> str:
    fs_id = efs.create_file_system(CreationToken=token, Encrypted=True,
                                   Tags=[{"Key": key, "Value": value} for key, value in tags.items()])["FileSystemId"]
    for subnet in subnets:
        efs.create_mount_target(FileSystemId=fs_id, SubnetId=subnet, **({"SecurityGroups": [group]} if group else {}))
    return fs_id


def file_system_ids(efs) -> set[str]:
    return {fs["FileSystemId"] for fs in efs.describe_file_systems()["FileSystems"]}


def group_ids(ec2, vpc_id: str) -> set[str]:
    return {group["GroupId"] for group in ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]}


def record_calls(client) -> list[str]:
    calls: list[str] = []
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


def test_delete_removes_only_this_vpcs_sagemaker_home_efs_then_its_nfs_groups(aws) -> None:
    ec2, efs = aws["ec2"], aws["efs"]
    studio_vpc, studio_subnets = make_vpc(ec2, "10.20.0.0/16")
    other_vpc, other_subnets = make_vpc(ec2, "10.30.0.0/16")
    inbound, outbound = make_nfs_groups(ec2, studio_vpc, DOMAIN)
    studio_group = ec2.create_security_group(VpcId=studio_vpc, GroupName="chainfeat-studio",
                                             Description="Studio apps")["GroupId"]
    other_inbound, other_outbound = make_nfs_groups(ec2, other_vpc, "d-otherdomain01")

    home = make_file_system(efs, "home", {"ManagedByAmazonSageMakerResource": DOMAIN_ARN}, studio_subnets, inbound)
    untagged = make_file_system(efs, "untagged", {"Name": "someone's data"}, studio_subnets[:1], studio_group)
    elsewhere = make_file_system(efs, "elsewhere", {"ManagedByAmazonSageMakerResource": "arn:x:domain/d-otherdomain01"},
                                 other_subnets, other_inbound)
    unmounted = make_file_system(efs, "unmounted", {"ManagedByAmazonSageMakerResource": "arn:x:domain/d-otherdomain02"},
                                 [], None)
    groups_before = group_ids(ec2, studio_vpc)

    handler.use_clients(ec2=ec2, efs=efs)  # the same env-configured clients, with a call recorder on EC2
    ec2_calls, efs_calls = record_calls(ec2), record_calls(efs)
    polls = run_provider(delete_event("Custom::StudioHomeEfs", {"VpcId": studio_vpc, "Region": REGION},
                                      f"studio-home-efs:{studio_vpc}"))

    # Mount targets first (on_event), then the file system once they are gone, then the groups.
    assert polls == [False, True]
    assert file_system_ids(efs) >= {untagged, elsewhere, unmounted} and home not in file_system_ids(efs)
    assert efs_calls.count("DeleteMountTarget") == 2 and efs_calls.count("DeleteFileSystem") == 1
    assert efs_calls.index("DeleteFileSystem") > max(i for i, c in enumerate(efs_calls) if c == "DeleteMountTarget")
    assert len(efs.describe_mount_targets(FileSystemId=untagged)["MountTargets"]) == 1
    assert len(efs.describe_mount_targets(FileSystemId=elsewhere)["MountTargets"]) == 2
    assert group_ids(ec2, studio_vpc) == groups_before - {inbound, outbound}
    assert studio_group in group_ids(ec2, studio_vpc)
    assert {other_inbound, other_outbound} <= group_ids(ec2, other_vpc)
    # The groups' mutual references are revoked before either group is deleted.
    deletes = [i for i, call in enumerate(ec2_calls) if call == "DeleteSecurityGroup"]
    revokes = [i for i, call in enumerate(ec2_calls) if call.startswith("RevokeSecurityGroup")]
    assert len(deletes) == 2 and {"RevokeSecurityGroupIngress", "RevokeSecurityGroupEgress"} <= set(ec2_calls)
    assert max(revokes) < min(deletes)

    # A second deletion (a retried stack deletion) finds nothing to do and succeeds.
    assert run_provider(delete_event("Custom::StudioHomeEfs", {"VpcId": studio_vpc, "Region": REGION},
                                     f"studio-home-efs:{studio_vpc}")) == [True]
    assert file_system_ids(efs) >= {untagged, elsewhere, unmounted}


def test_a_retried_delete_finds_the_unmounted_home_efs_by_its_domain(aws) -> None:
    """A deletion that stopped after the mount targets went: the file system no longer points at the VPC,
    but its tag names the domain whose NFS groups are still in the VPC."""
    ec2, efs = aws["ec2"], aws["efs"]
    studio_vpc, _subnets = make_vpc(ec2, "10.40.0.0/16")
    inbound, outbound = make_nfs_groups(ec2, studio_vpc, "d-retrydomain1")
    orphan = make_file_system(efs, "orphan", {"ManagedByAmazonSageMakerResource":
                                              f"arn:aws:sagemaker:{REGION}:123456789012:domain/d-retrydomain1"},
                              [], None)
    stranger = make_file_system(efs, "stranger", {"ManagedByAmazonSageMakerResource":
                                                  f"arn:aws:sagemaker:{REGION}:123456789012:domain/d-retrydomain10"},
                                [], None)

    polls = run_provider(delete_event("Custom::StudioHomeEfs", {"VpcId": studio_vpc, "Region": REGION},
                                      f"studio-home-efs:{studio_vpc}"))

    assert polls == [True]  # on_event deleted the unmounted file system; the first poll found it gone
    assert orphan not in file_system_ids(efs) and stranger in file_system_ids(efs)
    assert not {inbound, outbound} & group_ids(ec2, studio_vpc)


def test_a_vpc_without_a_domain_leftover_completes_at_once(aws) -> None:
    ec2 = aws["ec2"]
    studio_vpc, _subnets = make_vpc(ec2, "10.50.0.0/16")
    assert run_provider(delete_event("Custom::StudioHomeEfs", {"VpcId": studio_vpc, "Region": REGION},
                                     f"studio-home-efs:{studio_vpc}")) == [True]
