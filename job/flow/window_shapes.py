"""Each feature view's window (TUMBLE size, HOP size and slide, CUMULATE max size and step), read from Flink's
optimized plan of the view: what tells a complete window from a partial one (udfs/coverage.py) without the feature
file declaring it twice. The streaming job's writer and the backfill both use it."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.featurestore.model import FeatureGroupDefinition
from job.flow.config import duration_ms
from job.flow.feature_groups import FeatureFileError, file_position, view_error
from udfs.coverage import WindowShape

if TYPE_CHECKING:  # the plan cache imports pyflink, which this module leaves to its callers
    from job.flow.plan_cache import PlanCache

_WINDOW = re.compile(r"\b(TUMBLE|HOP|CUMULATE)\(time_col=\[[^\]]*\], ((?:\w+=\[[^\]]*\](?:, )?)+)\)")
_ARGUMENT = re.compile(r"(\w+)=\[([^\]]*)\]")
_CACHED = "window-shapes"  # what the plan cache keeps beside a plan's key: each group's window


class NotOneWindow(FeatureFileError):
    """A feature view without exactly one window: which of its rows are complete cannot be told."""


def parse_window_shape(found: tuple[str, str]) -> WindowShape:
    """From a window_shapes() match: the function's name and its arguments ("size=[5 min], slide=[1 min]")."""
    kind, arguments = found
    values = {name: duration_ms(value, f"{kind} {name}") / 1000 for name, value in _ARGUMENT.findall(arguments)}
    offset = values.get("offset", 0.0)
    if kind == "TUMBLE":
        return WindowShape(kind, values["size"], values["size"], offset)
    if kind == "HOP":
        return WindowShape(kind, values["size"], values["slide"], offset)
    return WindowShape(kind, values["max_size"], values["step"], offset)


def window_shapes(plan: str) -> list[tuple[str, str]]:
    """The window table functions in an optimized plan (explain()'s text), outermost first."""
    optimized = plan.split("== Optimized Physical Plan ==")[-1].split("== Optimized Execution Plan ==")[0]
    return _WINDOW.findall(optimized)


def feature_window(table_env: Any, view: str, path: Path, shared_windows: list[tuple[str, str]]) -> WindowShape:
    """The window of the feature view ``view``: the one its plan has beyond ``shared_windows``, those of
    unique_transactions (the dedup's one-second tumble, which sql/inputs_outputs.sql's views share). A view without
    exactly one window is NotOneWindow."""
    try:
        own = window_shapes(table_env.from_path(view).explain())
    except Exception as error:  # noqa: BLE001 - Flink's refusal of the view (e.g. a HOP it cannot slice), by file
        raise view_error(path, error) from None
    for shared in shared_windows:
        if shared in own:
            own.remove(shared)
    distinct = list(dict.fromkeys(own))
    if len(distinct) != 1:
        raise NotOneWindow(
            f"{file_position(path)}: a backfill needs the view to aggregate over one TUMBLE, HOP or CUMULATE window of "
            f"unique_transactions (or unique_inputs, unique_outputs) (it has {len(distinct) or 'none'}), to tell its "
            "complete windows from partial ones")
    return parse_window_shape(distinct[0])


def cached_group_windows(cache: PlanCache, key: str,
                         groups: list[FeatureGroupDefinition]) -> dict[str, WindowShape | None] | None:
    """The groups' windows group_windows kept under ``key``; None if it kept none (or another version's)."""
    cached = cache.read_beside(_CACHED, key)
    if not isinstance(cached, dict) or set(cached) != {definition.name for definition in groups}:
        return None
    try:
        return {name: WindowShape(**shape) if shape else None for name, shape in cached.items()}
    except TypeError:
        return None


def group_windows(table_env: Any, groups: list[FeatureGroupDefinition], paths: dict[str, Path],
                  cache: PlanCache | None = None, key: str | None = None,
                  required: bool = True) -> dict[str, WindowShape | None]:
    """Each group's window (feature_window; with ``required`` False, None for a view that is not one window: the
    streaming job writes all of its rows). Finding them plans each view (explain(): ~1 s a view here), so a local
    job keeps them in the plan cache under the key of the statements they come from."""
    found = cached_group_windows(cache, key, groups) if cache and key else None
    if found is not None and (not required or all(found.values())):
        return found
    shared_windows = window_shapes(table_env.from_path("unique_transactions").explain())
    shapes: dict[str, WindowShape | None] = {}
    for definition in groups:
        try:
            shapes[definition.name] = feature_window(table_env, definition.name, paths[definition.name], shared_windows)
        except NotOneWindow:
            if required:
                raise
            shapes[definition.name] = None
    if cache and key:
        cache.write_beside(_CACHED, key, {name: asdict(shape) if shape else None for name, shape in shapes.items()})
    return shapes
