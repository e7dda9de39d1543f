"""Feature-group definitions and value rules shared by the local server and the client.

The rules mirror Amazon SageMaker Feature Store: values travel as strings (``ValueAsString``),
each feature has one of three types, and the event-time feature is either Fractional (Unix epoch
seconds) or String (ISO-8601 ``yyyy-MM-dd'T'HH:mm:ssZ`` or ``yyyy-MM-dd'T'HH:mm:ss.SSSZ``).

A feature may also be a collection of its type (FeatureDefinition.CollectionType List, Set or Vector; its values
travel as ``ValueAsStringList``), with the rules of the developer guide's "Collection types"
(https://docs.aws.amazon.com/sagemaker/latest/dg/feature-store-collection-types.html) and the API reference's
FeatureDefinition, CollectionConfig, VectorConfig (API_FeatureDefinition.html, API_CollectionConfig.html,
API_VectorConfig.html) and FeatureValue (API_feature_store_FeatureValue.html). Which groups may have them
(InMemory online stores only) is a group-configuration rule: local/groups.py.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from functools import cached_property
from typing import Any

FEATURE_GROUP_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
FEATURE_NAME = re.compile(r"^[a-zA-Z0-9]([-_]*[a-zA-Z0-9]){0,63}$")
# Columns Feature Store adds to every offline record; no feature may take their names.
RESERVED_FEATURE_NAMES = ("is_deleted", "write_time", "api_invocation_time")
MAX_FEATURE_DEFINITIONS = 2500
# The service's documented limits (SageMaker developer guide, "Quotas, naming rules and data types").
MAX_RECORD_BYTES = 350 * 1024
MAX_RECORD_IDENTIFIER_BYTES = 2 * 1024
_INTEGRAL = re.compile(r"^[+-]?\d+$")
_INT64_DIGITS = 19  # more digits than this cannot be a 64-bit integer (checked before int(), which refuses
                    # strings of over 4300 digits with an error of its own)
_ISO_EVENT_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
MAX_VECTOR_DIMENSION = 8192  # VectorConfig.Dimension: 1 to 8192
MAX_VECTORS_PER_GROUP = 1  # "You may only have one vector collection type per ... InMemory ... feature group"
MAX_VALUE_LIST_ITEMS = 358_400  # FeatureValue.ValueAsStringList: 0 to 358,400 items
# "Only InMemory online store feature groups currently support collection types" (the guide's Collection types)
COLLECTION_STORAGE_TYPE = "InMemory"


class FeatureValueError(ValueError):
    """A value that does not satisfy its feature's declared type (the message names the feature)."""


class FeatureType(str, Enum):
    INTEGRAL = "Integral"
    FRACTIONAL = "Fractional"
    STRING = "String"


class CollectionType(str, Enum):
    LIST = "List"  # ordered, repeats allowed
    SET = "Set"  # unique elements (a repeat is dropped, the first occurrence kept)
    VECTOR = "Vector"  # Fractional elements, exactly its dimension of them


@dataclass(frozen=True)
class Collection:
    """A collection feature's CollectionType and, for a Vector, its dimension (CollectionConfig.VectorConfig)."""

    type: CollectionType
    dimension: int | None = None

    def to_api(self) -> dict[str, Any]:
        """The FeatureDefinition members that declare it."""
        declared: dict[str, Any] = {"CollectionType": self.type.value}
        if self.type is CollectionType.VECTOR:
            declared["CollectionConfig"] = {"VectorConfig": {"Dimension": self.dimension}}
        return declared

    def parse(self, feature: str, feature_type: FeatureType, texts: Any) -> list[int | float | str]:
        """A ``ValueAsStringList`` as its typed elements, or FeatureValueError naming the feature: every element a
        string of the feature's type, a Vector exactly its dimension long, a Set without repeats."""
        if not isinstance(texts, list):
            raise FeatureValueError(f"Feature '{feature}' is a {self.type.value}: ValueAsStringList must be a list")
        if len(texts) > MAX_VALUE_LIST_ITEMS:
            raise FeatureValueError(f"Feature '{feature}' ValueAsStringList has {len(texts)} items; at most "
                                    f"{MAX_VALUE_LIST_ITEMS} are allowed")
        elements = []
        for position, text in enumerate(texts):
            if not isinstance(text, str):
                raise FeatureValueError(f"Feature '{feature}' element {position} is {_shown(str(text))}, not a "
                                        "string: a collection cannot hold nulls")
            elements.append(parse_value(f"{feature}[{position}]", feature_type, text))
        if self.type is CollectionType.VECTOR and len(elements) != self.dimension:
            raise FeatureValueError(f"Feature '{feature}' is a Vector of dimension {self.dimension} but its value has "
                                    f"{len(elements)} elements")
        if self.type is CollectionType.SET:
            elements = list(dict.fromkeys(elements))
        return elements


def parse_value(feature: str, feature_type: FeatureType, text: str) -> int | float | str:
    """Parse a ``ValueAsString`` into its Python value, or raise FeatureValueError naming the feature."""
    if feature_type is FeatureType.INTEGRAL:
        if not _INTEGRAL.match(text):
            raise FeatureValueError(f"Feature '{feature}' is Integral but its value {_shown(text)} is not an integer")
        if len(text.lstrip("+-").lstrip("0")) > _INT64_DIGITS:
            raise FeatureValueError(f"Feature '{feature}' value {_shown(text)} is out of the 64-bit Integral range")
        value = int(text)
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise FeatureValueError(f"Feature '{feature}' value {_shown(text)} is out of the 64-bit Integral range")
        return value
    if feature_type is FeatureType.FRACTIONAL:
        try:
            value = float(text)
        except ValueError:
            raise FeatureValueError(
                f"Feature '{feature}' is Fractional but its value {_shown(text)} is not a number"
            ) from None
        if not math.isfinite(value):
            raise FeatureValueError(f"Feature '{feature}' value {_shown(text)} is not a finite number")
        return value
    return text


def _shown(text: str, limit: int = 40) -> str:
    """A value quoted for an error message, cut short: a message must not echo a 350 KB value back."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"


def record_size_error(record: list[Mapping[str, Any]]) -> str | None:
    """Why a ``Record`` is over the service's 350 KB record limit, or None (UTF-8 bytes of names and values)."""
    size = 0
    for entry in record:
        size += len(str(entry.get("FeatureName", "")).encode())
        if entry.get("ValueAsString") is not None:
            size += len(str(entry["ValueAsString"]).encode())
        for item in entry.get("ValueAsStringList") or []:
            size += len(str(item).encode())
    if size > MAX_RECORD_BYTES:
        return f"Record size {size} bytes exceeds the maximum record size of {MAX_RECORD_BYTES} bytes (350 KB)"
    return None


def format_value(value: Any) -> str:
    """The ``ValueAsString`` form of a Python value (floats keep full precision)."""
    if isinstance(value, bool):
        raise TypeError("booleans have no Feature Store type; store them as Integral 0/1 or String")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return format_iso_event_time(value)
    return str(value)


def format_iso_event_time(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class FeatureGroupDefinition:
    """What CreateFeatureGroup declares: a name, the identifier and event-time features, and types."""

    name: str
    record_identifier: str
    event_time_feature: str
    features: Mapping[str, FeatureType] = field(default_factory=dict)
    description: str = ""
    collections: Mapping[str, Collection] = field(default_factory=dict)  # the features that are collections

    def __post_init__(self) -> None:
        if not FEATURE_GROUP_NAME.match(self.name):
            raise FeatureValueError(
                f"FeatureGroupName '{self.name}' must match {FEATURE_GROUP_NAME.pattern} (letters, digits, - and _)"
            )
        if not 1 <= len(self.features) <= MAX_FEATURE_DEFINITIONS:
            raise FeatureValueError(f"FeatureDefinitions must have between 1 and {MAX_FEATURE_DEFINITIONS} features, "
                                    f"got {len(self.features)}")
        for feature in self.features:
            if not FEATURE_NAME.match(feature):
                raise FeatureValueError(f"FeatureName '{feature}' must match {FEATURE_NAME.pattern}")
            if feature in RESERVED_FEATURE_NAMES:
                raise FeatureValueError(f"FeatureName '{feature}' is reserved (the offline store's own column); "
                                        f"FeatureNames cannot be any of {', '.join(RESERVED_FEATURE_NAMES)}")
        if self.record_identifier not in self.features:
            raise FeatureValueError(
                f"RecordIdentifierFeatureName '{self.record_identifier}' is not among the FeatureDefinitions"
            )
        if self.event_time_feature not in self.features:
            raise FeatureValueError(
                f"EventTimeFeatureName '{self.event_time_feature}' is not among the FeatureDefinitions"
            )
        if self.features[self.event_time_feature] is FeatureType.INTEGRAL:
            raise FeatureValueError(
                f"EventTimeFeatureName '{self.event_time_feature}' must be of type Fractional or String, not Integral"
            )
        if self.features[self.record_identifier] is FeatureType.FRACTIONAL:
            raise FeatureValueError(
                f"RecordIdentifierFeatureName '{self.record_identifier}' must be of type Integral or String"
            )
        for key in (self.record_identifier, self.event_time_feature):
            if key in self.collections:
                raise FeatureValueError(f"Feature '{key}' is the record identifier or the event time: it cannot be a "
                                        f"collection (CollectionType {self.collections[key].type.value})")
        unknown = [name for name in self.collections if name not in self.features]
        if unknown:
            raise FeatureValueError(f"collection feature '{unknown[0]}' is not among the FeatureDefinitions")
        vectors = [name for name, c in self.collections.items() if c.type is CollectionType.VECTOR]
        if len(vectors) > MAX_VECTORS_PER_GROUP:
            raise FeatureValueError(f"a feature group can have only {MAX_VECTORS_PER_GROUP} Vector feature, got "
                                    f"{len(vectors)} ({', '.join(vectors)})")

    @classmethod
    def from_api(cls, request: Mapping[str, Any]) -> FeatureGroupDefinition:
        """From a CreateFeatureGroup request or a DescribeFeatureGroup response."""
        definitions = request.get("FeatureDefinitions") or []
        return cls(
            name=request.get("FeatureGroupName", ""),
            record_identifier=request.get("RecordIdentifierFeatureName", ""),
            event_time_feature=request.get("EventTimeFeatureName", ""),
            features=feature_types(definitions),
            description=request.get("Description", ""),
            collections=feature_collections(definitions),
        )

    def to_api(self) -> dict[str, Any]:
        """As CreateFeatureGroup declares it (the inverse of from_api)."""
        request: dict[str, Any] = {"FeatureGroupName": self.name, "RecordIdentifierFeatureName": self.record_identifier,
                                   "EventTimeFeatureName": self.event_time_feature,
                                   "FeatureDefinitions": self.feature_definitions()}
        if self.description:
            request["Description"] = self.description
        return request

    def feature_definitions(self, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
        """FeatureDefinitions as the API declares them (of the features in ``names``, in order; all by default)."""
        return [{"FeatureName": name, "FeatureType": self.features[name].value,
                 **(self.collections[name].to_api() if name in self.collections else {})}
                for name in (self.features if names is None else names)]

    def with_features(self, additions: Mapping[str, FeatureType],
                      collections: Mapping[str, Collection] | None = None) -> FeatureGroupDefinition:
        """This group after UpdateFeatureGroup's FeatureAdditions (appended, as the service lists them)."""
        return FeatureGroupDefinition(self.name, self.record_identifier, self.event_time_feature,
                                      {**self.features, **additions}, self.description,
                                      {**self.collections, **(collections or {})})

    def change_to(self, wanted: FeatureGroupDefinition) -> SchemaChange:
        """What turning this (existing) group into ``wanted`` takes; SageMaker can only add features."""
        return SchemaChange(
            additions={name: kind for name, kind in wanted.features.items() if name not in self.features},
            removed=[name for name in self.features if name not in wanted.features],
            retyped={name: (self.type_name(name), wanted.type_name(name)) for name in self.features
                     if name in wanted.features and self.type_name(name) != wanted.type_name(name)},
            keys_changed=(self.record_identifier, self.event_time_feature)
            != (wanted.record_identifier, wanted.event_time_feature),
        )

    def type_name(self, feature: str) -> str:
        """A feature's type as a person reads it: ``String``, ``List of String``, ``Vector(3) of Fractional``."""
        collection = self.collections.get(feature)
        if collection is None:
            return self.features[feature].value
        shape = f"Vector({collection.dimension})" if collection.type is CollectionType.VECTOR else collection.type.value
        return f"{shape} of {self.features[feature].value}"

    def parse_event_time(self, text: str) -> float:
        """Event time as epoch seconds; ValidationError-worthy messages name the feature."""
        name = self.event_time_feature
        if self.features[name] is FeatureType.FRACTIONAL:
            seconds = parse_value(name, FeatureType.FRACTIONAL, text)
            if seconds < 0:
                raise FeatureValueError(f"Event time feature '{name}' must not be negative, got {text!r}")
            return float(seconds)
        if not _ISO_EVENT_TIME.match(text):
            raise FeatureValueError(
                f"Event time feature '{name}' value {text!r} must be ISO-8601 "
                "yyyy-MM-dd'T'HH:mm:ssZ or yyyy-MM-dd'T'HH:mm:ss.SSSZ"
            )
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise FeatureValueError(f"Event time feature '{name}' value {text!r} is not a valid date") from None
        return moment.timestamp()

    def _parse_entry(self, name: str, entry: Mapping[str, Any]) -> Any:
        """One FeatureValue: ValueAsStringList for a collection feature, ValueAsString for any other."""
        collection = self.collections.get(name)
        if collection is None:
            if entry.get("ValueAsStringList") is not None:
                raise FeatureValueError(f"Feature '{name}' is not a collection (no CollectionType): give its value "
                                        "as ValueAsString, not ValueAsStringList")
            text = entry.get("ValueAsString")
            if text is None:
                raise FeatureValueError(f"Feature '{name}' has no ValueAsString")
            return parse_value(name, self.features[name], text)
        if entry.get("ValueAsString") is not None:
            raise FeatureValueError(f"Feature '{name}' is a {collection.type.value}: give its value as "
                                    "ValueAsStringList, not ValueAsString")
        if entry.get("ValueAsStringList") is None:
            raise FeatureValueError(f"Feature '{name}' has no ValueAsStringList")
        return collection.parse(name, self.features[name], entry["ValueAsStringList"])

    def parse_record(self, record: list[Mapping[str, Any]], partial: bool = False
                     ) -> tuple[dict[str, Any], str, float | None]:
        """Validate a ``Record`` (list of FeatureName/ValueAsString) against this definition.

        Returns the typed values, the record identifier as a string, and the event time in epoch seconds.
        ``partial``: UpdateRecord's features, which need neither the identifier nor the event time (then None).
        """
        if not partial:
            parsed = self._parse_plain_record(record)
            if parsed is not None:
                return parsed
        too_big = record_size_error(record)
        if too_big:
            raise FeatureValueError(too_big)
        values: dict[str, Any] = {}
        for entry in record:
            name = entry.get("FeatureName")
            if name not in self.features:
                raise FeatureValueError(f"Feature '{name}' is not defined in feature group '{self.name}'")
            if name in values:
                raise FeatureValueError(f"Feature '{name}' appears more than once in the record")
            values[name] = self._parse_entry(name, entry)
        if partial:
            event_time = (self.parse_event_time(_raw(record, self.event_time_feature))
                          if self.event_time_feature in values else None)
            return values, "", event_time
        if values.get(self.record_identifier) in (None, ""):
            raise FeatureValueError(
                f"Record identifier feature '{self.record_identifier}' is missing from the record"
            )
        identifier = str(values[self.record_identifier])
        check_record_identifier(self.record_identifier, identifier)
        if self.event_time_feature not in values:
            raise FeatureValueError(f"Event time feature '{self.event_time_feature}' is missing from the record")
        event_time = self.parse_event_time(_raw(record, self.event_time_feature))
        return values, identifier, event_time

    @cached_property
    def _scalar_types(self) -> dict[str, FeatureType]:
        return {name: kind for name, kind in self.features.items() if name not in self.collections}

    def _parse_plain_record(self, record: Any) -> tuple[dict[str, Any], str, float] | None:
        """parse_record's answer for a record of scalar features given the usual way (each entry exactly a
        FeatureName and a ValueAsString), every value valid: the same checks in one pass. None for anything else,
        valid or not, which parse_record then checks the long way (and words the error of)."""
        if type(record) is not list:
            return None
        types = self._scalar_types
        values: dict[str, Any] = {}
        size = 0
        event_time_text = None
        for entry in record:
            if type(entry) is not dict or len(entry) != 2:
                return None
            name, text = entry.get("FeatureName"), entry.get("ValueAsString")
            if type(name) is not str or type(text) is not str or not text.isascii():
                return None  # the long way measures a value's UTF-8 bytes
            kind = types.get(name)
            if kind is None or name in values:
                return None
            size += len(name) + len(text)
            if kind is FeatureType.STRING:
                values[name] = text
            elif kind is FeatureType.INTEGRAL:
                if len(text) > _INT64_DIGITS or not _INTEGRAL.match(text):
                    return None
                values[name] = int(text)
                if not _INT64_MIN <= values[name] <= _INT64_MAX:
                    return None
            else:
                try:
                    value = float(text)
                except ValueError:
                    return None
                if not math.isfinite(value):
                    return None
                values[name] = value
            if name == self.event_time_feature:
                event_time_text = text
        if size > MAX_RECORD_BYTES or event_time_text is None:
            return None
        identifier = values.get(self.record_identifier)
        if identifier is None or identifier == "":
            return None
        identifier = str(identifier)
        if len(identifier) > MAX_RECORD_IDENTIFIER_BYTES:  # ASCII (an integer's digits, or a checked value)
            return None
        if types[self.event_time_feature] is FeatureType.FRACTIONAL:
            event_time = values[self.event_time_feature]
            if event_time < 0:
                return None
            return values, identifier, float(event_time)
        try:
            return values, identifier, self.parse_event_time(event_time_text)
        except FeatureValueError:
            return None


def check_record_identifier(feature: str, identifier: str) -> None:
    """The service's 2 KB limit on a record identifier value."""
    if len(identifier.encode()) > MAX_RECORD_IDENTIFIER_BYTES:
        raise FeatureValueError(f"Record identifier feature '{feature}' value {_shown(identifier)} exceeds the "
                                f"maximum record identifier size of {MAX_RECORD_IDENTIFIER_BYTES} bytes (2 KB)")


def feature_types(definitions: list[Mapping[str, Any]]) -> dict[str, FeatureType]:
    """FeatureDefinitions (CreateFeatureGroup's, or UpdateFeatureGroup's FeatureAdditions) as {name: type}."""
    features: dict[str, FeatureType] = {}
    for definition in definitions:
        name = definition.get("FeatureName", "")
        if name in features:
            raise FeatureValueError(f"FeatureName '{name}' is defined twice")
        try:
            features[name] = FeatureType(definition.get("FeatureType"))
        except ValueError:
            raise FeatureValueError(f"FeatureType of '{name}' must be one of Integral, Fractional, String") from None
    return features


def feature_collections(definitions: list[Mapping[str, Any]]) -> dict[str, Collection]:
    """The collection features of FeatureDefinitions, by name: CollectionType List, Set or Vector; a Vector's
    elements Fractional and its CollectionConfig.VectorConfig.Dimension 1 to 8192; no CollectionConfig otherwise."""
    collections: dict[str, Collection] = {}
    for definition in definitions:
        name, declared, config = (definition.get("FeatureName", ""), definition.get("CollectionType"),
                                  definition.get("CollectionConfig"))
        if declared is None:
            if config is not None:
                raise FeatureValueError(f"Feature '{name}' has a CollectionConfig but no CollectionType")
            continue
        try:
            kind = CollectionType(declared)
        except ValueError:
            raise FeatureValueError(f"CollectionType of '{name}' must be one of List, Set, Vector, "
                                    f"got {declared!r}") from None
        if kind is not CollectionType.VECTOR:
            if config is not None:
                raise FeatureValueError(f"Feature '{name}' is a {kind.value}: CollectionConfig (VectorConfig) is "
                                        "only for a Vector")
            collections[name] = Collection(kind)
            continue
        dimension = ((config or {}).get("VectorConfig") or {}).get("Dimension")
        if not isinstance(dimension, int) or isinstance(dimension, bool) or not 1 <= dimension <= MAX_VECTOR_DIMENSION:
            raise FeatureValueError(f"Feature '{name}' is a Vector: CollectionConfig.VectorConfig.Dimension must be an "
                                    f"integer from 1 to {MAX_VECTOR_DIMENSION}, got {dimension!r}")
        if definition.get("FeatureType") != FeatureType.FRACTIONAL.value:
            raise FeatureValueError(f"Feature '{name}' is a Vector: its FeatureType must be Fractional, "
                                    f"not {definition.get('FeatureType')}")
        collections[name] = Collection(kind, dimension)
    return collections


@dataclass(frozen=True)
class SchemaChange:
    """The difference between an existing feature group and the one a job wants (FeatureGroupDefinition.change_to)."""

    additions: Mapping[str, FeatureType]
    removed: list[str]
    retyped: Mapping[str, tuple[str, str]]  # name: (its type now, the type wanted), as type_name gives them
    keys_changed: bool

    @property
    def allowed(self) -> bool:
        """SageMaker lets a group gain features (UpdateFeatureGroup FeatureAdditions), nothing else."""
        return not (self.removed or self.retyped or self.keys_changed)

    def refusal(self, existing: FeatureGroupDefinition, wanted: FeatureGroupDefinition) -> str:
        """Why the change cannot be made, what SageMaker allows, and what to do instead (one paragraph)."""
        problems = []
        if self.removed:
            problems.append("removes " + ", ".join(self.removed))
        for name, (old, new) in self.retyped.items():
            problems.append(f"changes {name} from {old} to {new}")
        if self.keys_changed:
            problems.append(f"changes the record identifier / event time from {existing.record_identifier} / "
                            f"{existing.event_time_feature} to {wanted.record_identifier} / {wanted.event_time_feature}")
        return (f"feature group {existing.name} exists and the job's definition {'; '.join(problems)}. "
                "SageMaker Feature Store can only add features to a group (UpdateFeatureGroup FeatureAdditions); it "
                "cannot remove or retype a feature or change the record identifier or event time. Keep the column "
                f"as it was (add new ones instead), or write to a new feature group: rename the feature file "
                f"(a new name is a new group), or delete the group first if its data may go (locally: `chainfeat "
                f"featurestore delete-group {existing.name}`).")


def _raw(record: list[Mapping[str, Any]], feature: str) -> str:
    return next(entry["ValueAsString"] for entry in record if entry.get("FeatureName") == feature)


def to_api_value(name: str, value: Any) -> dict[str, Any]:
    """One FeatureValue: a list or tuple (a collection feature's value) as ValueAsStringList, anything else as
    ValueAsString."""
    if isinstance(value, (list, tuple)):
        # a null element stays null: the store refuses it (a collection cannot hold nulls), never "None"
        return {"FeatureName": name,
                "ValueAsStringList": [None if element is None else format_value(element) for element in value]}
    return {"FeatureName": name, "ValueAsString": format_value(value)}


def to_api_record(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A Python mapping as a Feature Store ``Record``; None values are left out (Feature Store has no null)."""
    return [to_api_value(name, value) for name, value in values.items() if value is not None]


def from_api_record(record: list[Mapping[str, Any]], definition: FeatureGroupDefinition | None) -> dict[str, Any]:
    """A ``Record`` as a Python dict (a collection as a list), typed when the definition is known."""
    values: dict[str, Any] = {}
    for entry in record:
        name = entry["FeatureName"]
        kind = definition.features.get(name) if definition else None
        texts = entry.get("ValueAsStringList")
        if texts is not None:
            values[name] = [parse_value(name, kind, text) for text in texts] if kind else list(texts)
            continue
        text = entry.get("ValueAsString")
        values[name] = parse_value(name, kind, text) if kind and text is not None else text
    return values
