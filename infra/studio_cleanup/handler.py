"""Studio clean-up: the user function of a CDK Provider (custom_resources.Provider) with an isComplete handler.

CloudFormation cannot delete a SageMaker Studio domain while its user still has apps or private spaces, and
it leaves behind the home EFS file system SageMaker created for the domain, with the two NFS security groups
that then block the deletion of the VPC. Two custom resources run this module:

``Custom::StudioApps`` (properties ``DomainId``, ``UserProfileName``), deleted before the user profile and the
domain: deletes the user's apps and the spaces the user owns (with the apps in them), then waits until they
are gone. Deleting an app takes minutes, and a space can only go once its apps have; the Provider's waiter
polls ``is_complete`` past a Lambda function's 15-minute limit (up to CloudFormation's one-hour limit for a
custom resource; a stack deletion retried after that resumes where this one stopped).

``Custom::StudioHomeEfs`` (properties ``VpcId``, ``Region``; the clients use the function's own region, the
same), deleted after the domain and before the VPC:
deletes the mount targets in this VPC of the file systems tagged ``ManagedByAmazonSageMakerResource``,
waits for them to go, deletes those file systems, then the SageMaker-created NFS security groups of this
VPC (``security-group-for-inbound-nfs-<domain id>``, ``security-group-for-outbound-nfs-<domain id>``), whose
rules reference each other and are revoked first. Nothing outside this VPC is touched.

Contract (the Provider framework): ``on_event`` returns ``{"PhysicalResourceId": ...}``; ``is_complete``
returns ``{"IsComplete": bool}``. Create and Update do nothing. Every step is idempotent: a resource that is
already gone counts as deleted, so a retried Delete (or a second run of the stack deletion) succeeds.

Clients are created lazily with ``boto3.client(name)``: the Lambda runtime's region and credentials, or in
tests a local server through ``AWS_ENDPOINT_URL``; tests may also inject clients with ``use_clients``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import boto3
from botocore.exceptions import ClientError

LOG = logging.getLogger(__name__)
LOG.setLevel(logging.INFO)

APPS = "Custom::StudioApps"
HOME_EFS = "Custom::StudioHomeEfs"
SAGEMAKER_TAG = "ManagedByAmazonSageMakerResource"
NFS_GROUP = re.compile(r"^security-group-for-(inbound|outbound)-nfs-(?P<domain>d-[a-z0-9]+)$")
# App and space states in which nothing is left to delete (a Failed app cannot be deleted and does not
# block the deletion of its user profile or domain).
_APP_GONE = {"Deleted", "Failed"}
_ABSENT_CODES = {"ResourceNotFound", "FileSystemNotFound", "MountTargetNotFound", "InvalidGroup.NotFound",
                 "InvalidPermission.NotFound", "InvalidNetworkInterfaceID.NotFound"}
# SageMaker answers a delete of something gone with ResourceNotFound, or a ValidationException saying so.
_ABSENT_MESSAGES = ("does not exist", "not found", "already deleted", "has been deleted", "is deleted",
                    "in deleted state", "in deleted status")
_RETRY_LATER_CODES = {"ResourceInUse", "FileSystemInUse", "DependencyViolation", "IncorrectMountTargetState",
                      "IncorrectFileSystemLifeCycleState", "ThrottlingException", "Throttling"}

_clients: dict[str, Any] = {}


def client(service: str) -> Any:
    if service not in _clients:
        _clients[service] = boto3.client(service)
    return _clients[service]


def use_clients(**clients: Any) -> None:
    """Replace the cached clients (tests): ``use_clients(sagemaker=stubbed)``; ``use_clients()`` resets."""
    _clients.clear()
    _clients.update({name.replace("_", "-"): value for name, value in clients.items()})


# -- the Provider framework's entry points ---------------------------------------------------------------

def on_event(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    request, kind = event["RequestType"], event.get("ResourceType")
    properties = event.get("ResourceProperties") or {}
    LOG.info("%s %s %s", request, kind, {k: v for k, v in properties.items() if k != "ServiceToken"})
    if request != "Delete":
        return {"PhysicalResourceId": physical_resource_id(kind, properties)}
    # The physical id may not change on Delete (the framework rejects it). The framework passes this result,
    # merged into the event, to every is_complete call: the file systems found now, while their mount targets
    # still tie them to this VPC, are remembered there.
    result: dict[str, Any] = {"PhysicalResourceId": event["PhysicalResourceId"]}
    if kind == APPS:
        sweep_studio_apps(properties["DomainId"], properties["UserProfileName"])
    elif kind == HOME_EFS:
        found: set[str] = set()
        sweep_home_efs(properties["VpcId"], found=found)
        result["Data"] = {"FileSystemIds": ",".join(sorted(found))}
    else:
        raise ValueError(f"unknown resource type {kind!r}: expected {APPS} or {HOME_EFS}")
    return result


def is_complete(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    kind = event.get("ResourceType")
    if event["RequestType"] != "Delete":
        return {"IsComplete": True}
    properties = event.get("ResourceProperties") or {}
    if kind == APPS:
        done = sweep_studio_apps(properties["DomainId"], properties["UserProfileName"])
    elif kind == HOME_EFS:
        remembered = (event.get("Data") or {}).get("FileSystemIds") or ""
        done = sweep_home_efs(properties["VpcId"], found=set(filter(None, remembered.split(","))))
    else:
        raise ValueError(f"unknown resource type {kind!r}: expected {APPS} or {HOME_EFS}")
    LOG.info("Delete %s complete: %s", kind, done)
    # No "Data" here: the framework rejects Data with IsComplete false.
    return {"IsComplete": done}


def physical_resource_id(kind: str | None, properties: dict[str, Any]) -> str:
    """Stable for unchanged properties; a new domain (or VPC) gives a new id, so CloudFormation deletes the
    old resource, and cleans the old domain up, after the replacement."""
    if kind == APPS:
        return f"studio-apps:{properties['DomainId']}:{properties['UserProfileName']}"
    if kind == HOME_EFS:
        return f"studio-home-efs:{properties['VpcId']}"
    raise ValueError(f"unknown resource type {kind!r}: expected {APPS} or {HOME_EFS}")


# -- Studio apps and spaces -------------------------------------------------------------------------------

def sweep_studio_apps(domain_id: str, user: str) -> bool:
    """One pass: delete what can be deleted now; True once the user has no live app and owns no space."""
    sagemaker = client("sagemaker")
    spaces = [space for space in _pages(sagemaker, "list_spaces", "Spaces", DomainIdEquals=domain_id)
              if (space.get("OwnershipSettingsSummary") or {}).get("OwnerUserProfileName") == user]
    seen: set[tuple] = set()  # an app listed both for the user and for its space is deleted once

    def sweep_apps(**owner: str) -> bool:
        gone = True
        for app in _pages(sagemaker, "list_apps", "Apps", DomainIdEquals=domain_id, **owner):
            key = (app.get("SpaceName"), app.get("UserProfileName"), app["AppType"], app["AppName"])
            if key not in seen:
                seen.add(key)
                gone &= _delete_app(sagemaker, domain_id, app)
        return gone

    done = sweep_apps(UserProfileNameEquals=user)
    for space in spaces:
        name = space["SpaceName"]
        if sweep_apps(SpaceNameEquals=name) and space.get("Status") != "Deleting":
            LOG.info("DeleteSpace %s/%s (status %s)", domain_id, name, space.get("Status"))
            if _delete(lambda: sagemaker.delete_space(DomainId=domain_id, SpaceName=name)) == GONE:
                continue
        done = False  # the space is still there: wait until ListSpaces no longer shows it
    return done


def _delete_app(sagemaker: Any, domain_id: str, app: dict[str, Any]) -> bool:
    """Delete an app unless it is gone or going; True when nothing is left to wait for."""
    status = app.get("Status")
    if status in _APP_GONE:
        return True
    if status == "Deleting":
        return False
    owner = {"SpaceName": app["SpaceName"]} if app.get("SpaceName") else {"UserProfileName": app["UserProfileName"]}
    LOG.info("DeleteApp %s %s %s %s (status %s)", domain_id, owner, app["AppType"], app["AppName"], status)
    return _delete(lambda: sagemaker.delete_app(
        DomainId=domain_id, AppType=app["AppType"], AppName=app["AppName"], **owner)) == GONE


# -- the domain's home EFS and its NFS security groups -----------------------------------------------------

def sweep_home_efs(vpc_id: str, found: set[str] | None = None) -> bool:
    """One pass: mount targets first, then file systems, then the NFS security groups; True once all gone.

    ``found`` holds the ids of file systems known to be this VPC's (from an earlier pass); the file systems
    identified in this pass are added to it.
    """
    found = set() if found is None else found
    efs, ec2 = client("efs"), client("ec2")
    groups = [group for group in _pages(ec2, "describe_security_groups", "SecurityGroups",
                                        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
              if NFS_GROUP.match(group.get("GroupName", "")) and group.get("VpcId", vpc_id) == vpc_id]
    domain_ids = {NFS_GROUP.match(group["GroupName"]).group("domain") for group in groups}
    done = True
    for file_system in _pages(efs, "describe_file_systems", "FileSystems"):
        done &= _sweep_file_system(efs, file_system, vpc_id, domain_ids, found)
    if not done:
        return False  # the security groups are attached to the mount targets' network interfaces
    for group in groups:
        _revoke_rules(ec2, group)
    for group in groups:
        LOG.info("DeleteSecurityGroup %s %s", group["GroupId"], group["GroupName"])
        done &= _delete(lambda: ec2.delete_security_group(GroupId=group["GroupId"])) != RETRY
    return done


def _sweep_file_system(efs: Any, file_system: dict[str, Any], vpc_id: str, domain_ids: set[str],
                       found: set[str]) -> bool:
    """True when nothing is left to do for this file system (not ours, or gone)."""
    tags = {tag["Key"]: tag.get("Value", "") for tag in file_system.get("Tags") or []}
    if SAGEMAKER_TAG not in tags:
        return True
    fs_id, state = file_system["FileSystemId"], file_system.get("LifeCycleState")
    try:
        targets = [target for target in _pages(efs, "describe_mount_targets", "MountTargets", FileSystemId=fs_id)
                   if target.get("LifeCycleState") != "deleted"]
    except ClientError as error:
        if _absent(error):
            return True
        raise
    ours = [target for target in targets if target.get("VpcId") == vpc_id]
    others = [target for target in targets if target.get("VpcId") != vpc_id]
    # Ours: a mount target in this VPC; or found so by an earlier pass (its mount targets are gone now); or,
    # for a retried deletion that lost that memory, no mount target left and the tag naming a domain whose
    # NFS security groups are in this VPC.
    named_here = any(re.search(rf"(^|[/:]){re.escape(domain)}($|[/:])", tags[SAGEMAKER_TAG])
                     for domain in domain_ids)
    if not (ours or fs_id in found or (not targets and named_here)):
        return True
    found.add(fs_id)
    if state == "deleted":
        return True
    if state == "deleting":
        return False
    if ours:
        for target in ours:
            if target.get("LifeCycleState") != "deleting":
                LOG.info("DeleteMountTarget %s of %s in %s", target["MountTargetId"], fs_id, vpc_id)
                _delete(lambda: efs.delete_mount_target(MountTargetId=target["MountTargetId"]))
        return False  # wait for the mount targets to go
    if others:
        LOG.warning("%s has mount targets outside %s: the file system is kept", fs_id, vpc_id)
        return True
    LOG.info("DeleteFileSystem %s (tag %s=%s)", fs_id, SAGEMAKER_TAG, tags[SAGEMAKER_TAG])
    # Accepted: gone for good once DescribeFileSystems no longer lists it (the next pass).
    return _delete(lambda: efs.delete_file_system(FileSystemId=fs_id)) == GONE


def _revoke_rules(ec2: Any, group: dict[str, Any]) -> None:
    """The inbound and outbound NFS groups reference each other: remove the rules before the groups."""
    for permissions_key, revoke in (("IpPermissions", ec2.revoke_security_group_ingress),
                                    ("IpPermissionsEgress", ec2.revoke_security_group_egress)):
        permissions = [_clean_permission(permission) for permission in group.get(permissions_key) or []]
        if permissions:
            LOG.info("Revoke %s of %s: %s", permissions_key, group["GroupId"], permissions)
            _delete(lambda: revoke(GroupId=group["GroupId"], IpPermissions=permissions))


def _clean_permission(permission: dict[str, Any]) -> dict[str, Any]:
    """A described rule as a revoke request: only the fields that identify it."""
    pairs = [{key: pair[key] for key in ("GroupId", "UserId") if pair.get(key)}
             for pair in permission.get("UserIdGroupPairs") or []]
    cleaned = {key: permission[key] for key in ("IpProtocol", "FromPort", "ToPort", "IpRanges", "Ipv6Ranges",
                                                 "PrefixListIds") if permission.get(key) not in (None, [])}
    if pairs:
        cleaned["UserIdGroupPairs"] = pairs
    return cleaned


# -- helpers ----------------------------------------------------------------------------------------------

def _pages(service_client: Any, operation: str, items_key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every item of a listing, through boto3's paginator (NextToken or Marker, as the API has it)."""
    for page in service_client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(items_key) or []


def _absent(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "").lower()
    return code in _ABSENT_CODES or (code in ("ValidationException", "ValidationError")
                                      and any(text in message for text in _ABSENT_MESSAGES))


GONE, STARTED, RETRY = "gone", "started", "retry"


def _delete(call: Callable[[], Any]) -> str:
    """Run a delete call: STARTED when accepted, GONE when the resource was already gone, RETRY when it is
    in use or busy (try again on the next pass). Any other error is raised."""
    try:
        call()
        return STARTED
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if _absent(error):
            LOG.info("already gone: %s", error)
            return GONE
        if code in _RETRY_LATER_CODES:
            LOG.info("not yet: %s", error)
            return RETRY
        raise
