"""Feature-group configuration as SageMaker's control plane keeps it: what CreateFeatureGroup's request
becomes once the service has filled in its defaults, what UpdateFeatureGroup and UpdateFeatureMetadata may
change, and time-to-live durations. Pure functions over the API's own dicts; store.py persists them.

Shapes and limits follow botocore's ``sagemaker`` service model; semantics the SageMaker developer guide
(offline store URI structure, time to live, quotas). The local store keeps an offline store for every group,
also one created without an OfflineStoreConfig (then under ``DEFAULT_OFFLINE_S3_URI``), so what a job
writes can always be queried.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from connectors.featurestore.model import (
    COLLECTION_STORAGE_TYPE,
    MAX_FEATURE_DEFINITIONS,
    FeatureGroupDefinition,
    FeatureValueError,
    feature_collections,
    feature_types,
)

ACCOUNT_ID = "000000000000"
DATA_CATALOG = "AwsDataCatalog"
GLUE_DATABASE = "sagemaker_featurestore"
MAX_FEATURE_ADDITIONS = 100
MAX_FEATURE_PARAMETERS = 25
MAX_FEATURE_DESCRIPTION = 255
TTL_UNIT_SECONDS = {"Seconds": 1, "Minutes": 60, "Hours": 3600, "Days": 86400, "Weeks": 604800}
STORAGE_TYPES = ("Standard", "Standard_V2", "InMemory")
PARTIAL_UPDATE_STORAGE_TYPES = ("Standard_V2", "InMemory")  # UpdateRecord needs one of these
_S3_URI = re.compile(r"^(https|s3)://([^/]+)/?(.*)$")


class GroupConfigError(FeatureValueError):
    """A control-plane request the service would refuse (ValidationException)."""


class GroupLimitExceeded(GroupConfigError):
    """Over a quota (ResourceLimitExceeded), e.g. more than 2,500 features."""


def default_offline_s3_uri(region: str) -> str:
    """Where a group created without an OfflineStoreConfig keeps its offline store locally (the SageMaker
    Python SDK's default bucket name for the account and region)."""
    return f"s3://sagemaker-{region}-{ACCOUNT_ID}/feature-store"


def resolved_output_s3_uri(s3_uri: str, group: str, created_at: float, region: str) -> str:
    """SageMaker's offline layout: ``<S3Uri>/<account>/sagemaker/<region>/offline-store/<group>-<created>/data``."""
    return f"{s3_uri.rstrip('/')}/{ACCOUNT_ID}/sagemaker/{region}/offline-store/{group}-{int(created_at)}/data"


def default_table_name(group: str, created_at: float) -> str:
    """The Glue table SageMaker creates: the group's name and creation time, lower case, ``-`` as ``_``."""
    return f"{group}_{int(created_at)}".lower().replace("-", "_")


def ttl_seconds(ttl: Mapping[str, Any] | None, where: str = "TtlDuration") -> float | None:
    """A TtlDuration ({"Unit": "Hours", "Value": 2}) in seconds; None when absent or unset (Unit/Value null)."""
    if not ttl or (ttl.get("Unit") is None and ttl.get("Value") is None):
        return None
    unit, value = ttl.get("Unit"), ttl.get("Value")
    if unit not in TTL_UNIT_SECONDS:
        raise GroupConfigError(f"{where}.Unit must be one of {', '.join(TTL_UNIT_SECONDS)}, got {unit!r}")
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise GroupConfigError(f"{where}.Value must be an integer of at least 1, got {value!r}")
    return float(value * TTL_UNIT_SECONDS[unit])


def online_enabled(config: Mapping[str, Any]) -> bool:
    return bool((config.get("OnlineStoreConfig") or {}).get("EnableOnlineStore"))


def group_ttl_seconds(config: Mapping[str, Any]) -> float | None:
    return ttl_seconds((config.get("OnlineStoreConfig") or {}).get("TtlDuration"))


def storage_type(config: Mapping[str, Any]) -> str | None:
    return (config.get("OnlineStoreConfig") or {}).get("StorageType") if online_enabled(config) else None


def check_collections_allowed(config: Mapping[str, Any], collections: Mapping[str, Any]) -> None:
    """Collection features need an online store of a storage type that supports them (InMemory)."""
    if collections and storage_type(config) != COLLECTION_STORAGE_TYPE:
        name = next(iter(collections))
        raise GroupConfigError(f"Feature '{name}' is a collection (CollectionType {collections[name].type.value}): "
                               f"collection types need an online store of StorageType {COLLECTION_STORAGE_TYPE}, "
                               f"this feature group has {storage_type(config) or 'no online store'}")


def normalize_create(request: Mapping[str, Any], region: str, created_at: float) -> dict[str, Any]:
    """A CreateFeatureGroup request checked and completed as DescribeFeatureGroup reports it."""
    config = copy.deepcopy(dict(request))
    definition = FeatureGroupDefinition.from_api(config)  # names, types, collections, identifier and event time
    online = dict(config.get("OnlineStoreConfig") or {})
    if online:
        if online.get("EnableOnlineStore"):
            online.setdefault("StorageType", "Standard")
            if online["StorageType"] not in STORAGE_TYPES:
                raise GroupConfigError(f"OnlineStoreConfig.StorageType must be one of {', '.join(STORAGE_TYPES)}")
        if ttl_seconds(online.get("TtlDuration"), "OnlineStoreConfig.TtlDuration") and not online.get("EnableOnlineStore"):
            raise GroupConfigError("OnlineStoreConfig.TtlDuration needs an online store (EnableOnlineStore true)")
        config["OnlineStoreConfig"] = online
    check_collections_allowed(config, definition.collections)
    offline = dict(config.get("OfflineStoreConfig") or {"S3StorageConfig": {"S3Uri": default_offline_s3_uri(region)}})
    storage = dict(offline.get("S3StorageConfig") or {})
    s3_uri = storage.get("S3Uri") or ""
    if not _S3_URI.match(s3_uri):
        raise GroupConfigError(f"OfflineStoreConfig.S3StorageConfig.S3Uri must be an s3:// URI, got {s3_uri!r}")
    storage["ResolvedOutputS3Uri"] = resolved_output_s3_uri(s3_uri, config["FeatureGroupName"], created_at, region)
    offline["S3StorageConfig"] = storage
    offline.setdefault("DisableGlueTableCreation", False)
    offline.setdefault("TableFormat", "Glue")
    if offline["TableFormat"] == "Default":
        offline["TableFormat"] = "Glue"
    if offline["TableFormat"] not in ("Glue", "Iceberg"):
        raise GroupConfigError("OfflineStoreConfig.TableFormat must be Glue or Iceberg")
    if "DataCatalogConfig" in offline:
        catalog = offline["DataCatalogConfig"] or {}
        if not all(catalog.get(key) for key in ("TableName", "Catalog", "Database")):
            raise GroupConfigError("OfflineStoreConfig.DataCatalogConfig needs TableName, Catalog and Database")
    elif not offline["DisableGlueTableCreation"]:
        offline["DataCatalogConfig"] = {"TableName": default_table_name(config["FeatureGroupName"], created_at),
                                        "Catalog": DATA_CATALOG, "Database": GLUE_DATABASE}
    config["OfflineStoreConfig"] = offline
    config.setdefault("ThroughputConfig", {"ThroughputMode": "OnDemand"})
    return config


def check_update(config: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """The change an UpdateFeatureGroup request asks for (one kind at a time, as the service requires)."""
    asked = {key: request[key] for key in ("FeatureAdditions", "OnlineStoreConfig", "ThroughputConfig")
             if request.get(key) is not None}
    if len(asked) != 1:
        raise GroupConfigError("UpdateFeatureGroup takes exactly one of FeatureAdditions, OnlineStoreConfig and "
                               f"ThroughputConfig at a time, got {', '.join(asked) or 'none'}")
    if "FeatureAdditions" in asked:
        additions = asked["FeatureAdditions"]
        if not 1 <= len(additions) <= MAX_FEATURE_ADDITIONS:
            raise GroupConfigError(f"FeatureAdditions must have between 1 and {MAX_FEATURE_ADDITIONS} features")
        existing = FeatureGroupDefinition.from_api(config)
        added, added_collections = feature_types(additions), feature_collections(additions)
        already = [name for name in added if name in existing.features]
        if already:
            raise GroupConfigError(f"Feature '{already[0]}' already exists in feature group {existing.name}")
        if len(existing.features) + len(added) > MAX_FEATURE_DEFINITIONS:
            raise GroupLimitExceeded(f"a feature group can have at most {MAX_FEATURE_DEFINITIONS} features")
        check_collections_allowed(config, added_collections)
        existing.with_features(added, added_collections)  # names, reserved words, one Vector: as CreateFeatureGroup
    if "OnlineStoreConfig" in asked:
        update = asked["OnlineStoreConfig"]
        if not online_enabled(config):
            raise GroupConfigError("OnlineStoreConfig can only be updated on a feature group with an online store")
        ttl_seconds(update.get("TtlDuration"), "OnlineStoreConfig.TtlDuration")
        target = update.get("StorageType")
        if target is not None and (storage_type(config), target) not in (("Standard", "Standard_V2"),
                                                                        (storage_type(config), storage_type(config))):
            raise GroupConfigError(f"StorageType can only be migrated from Standard to Standard_V2 (one way), not "
                                   f"from {storage_type(config)} to {target}")
    if "ThroughputConfig" in asked and asked["ThroughputConfig"].get("ThroughputMode") not in (None, "OnDemand",
                                                                                              "Provisioned"):
        raise GroupConfigError("ThroughputConfig.ThroughputMode must be OnDemand or Provisioned")
    return copy.deepcopy(asked)


def apply_update(config: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration once an update (from check_update) has applied."""
    updated = copy.deepcopy(dict(config))
    if "FeatureAdditions" in change:
        additions = change["FeatureAdditions"]
        added = FeatureGroupDefinition.from_api(updated).with_features(feature_types(additions),
                                                                       feature_collections(additions))
        updated["FeatureDefinitions"] = added.feature_definitions()
    if "OnlineStoreConfig" in change:
        online = updated["OnlineStoreConfig"]
        if "TtlDuration" in change["OnlineStoreConfig"]:
            if ttl_seconds(change["OnlineStoreConfig"]["TtlDuration"]) is None:
                online.pop("TtlDuration", None)
            else:
                online["TtlDuration"] = change["OnlineStoreConfig"]["TtlDuration"]
        if change["OnlineStoreConfig"].get("StorageType"):
            online["StorageType"] = change["OnlineStoreConfig"]["StorageType"]
    if "ThroughputConfig" in change:
        throughput = {**updated.get("ThroughputConfig", {}), **change["ThroughputConfig"]}
        if throughput.get("ThroughputMode") == "OnDemand":
            throughput = {"ThroughputMode": "OnDemand"}
        updated["ThroughputConfig"] = throughput
    return updated


def update_metadata(metadata: Mapping[str, Any], request: Mapping[str, Any]) -> dict[str, Any]:
    """A feature's metadata ({"Description", "Parameters": {key: value}}) after UpdateFeatureMetadata."""
    description = request.get("Description")
    if description is not None and len(description) > MAX_FEATURE_DESCRIPTION:
        raise GroupConfigError(f"Description must be at most {MAX_FEATURE_DESCRIPTION} characters")
    additions = request.get("ParameterAdditions") or []
    removals = request.get("ParameterRemovals") or []
    if len(additions) > MAX_FEATURE_PARAMETERS or len(removals) > MAX_FEATURE_PARAMETERS:
        raise GroupConfigError(f"ParameterAdditions and ParameterRemovals take at most {MAX_FEATURE_PARAMETERS} each")
    parameters = dict(metadata.get("Parameters") or {})
    for parameter in additions:
        key, value = parameter.get("Key"), parameter.get("Value")
        if not (isinstance(key, str) and isinstance(value, str) and 1 <= len(key) <= 255 and 1 <= len(value) <= 255):
            raise GroupConfigError("each parameter needs a Key and a Value of 1 to 255 characters")
        if key in removals:
            raise GroupConfigError(f"parameter {key!r} is both added and removed")
        parameters[key] = value
    for key in removals:
        parameters.pop(key, None)
    if len(parameters) > MAX_FEATURE_PARAMETERS:
        raise GroupConfigError(f"a feature can have at most {MAX_FEATURE_PARAMETERS} parameters")
    updated = {**metadata, "Parameters": parameters}
    if description is not None:
        updated["Description"] = description
    return updated
