"""What the subcommands share: options, the source argument, warnings and exit codes."""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from typing import Any, Iterator

import click

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_EMPTY = 0, 1, 2, 3

workspace_option = click.option(
    "--workspace", "-w", type=click.Path(file_okay=False), default=None, envvar="RASTERET_WORKSPACE",
    show_envvar=True, help="Folder (or s3:// prefix) holding the collections  [default: ~/rasteret_workspace]",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
endpoint_option = click.option(
    "--endpoint-url", default=None, envvar="AWS_ENDPOINT_URL", show_envvar=True,
    help="S3-compatible endpoint for s3:// URLs  [default: AWS]",
)
retries_option = click.option("--retries", type=click.IntRange(min=0), default=None,
                              help="Retries per request on transient errors  [default: 5]")


def data_source(text: str, like: str = "sentinel-2"):
    """A registered source name, or a local items file read with ``like``'s band codes."""
    from pathlib import Path

    from rasteret_core.stac.sources import DataSource, DataSources

    if text.lower().endswith((".json", ".geojson", ".ndjson", ".parquet", ".geoparquet")) or Path(text).is_file():
        if not Path(text).is_file():
            raise click.BadParameter(f"no items file at {text}", param_hint="--source")
        return DataSource.from_items_file(text, dict(DataSources.get(like).band_map), name=Path(text).stem)
    try:
        return DataSources.get(text)
    except ValueError as err:
        raise click.BadParameter(str(err), param_hint="--source") from None


def check_date(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A ``--start`` / ``--end`` value that is a calendar date, named when it is not."""
    import datetime as dt

    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)") from None


def known_codes(codes: list[str] | None, stored: list[str]) -> list[str] | None:
    """Band codes as stored, matched without regard to case where that is unambiguous (``b04`` is ``B04``)."""
    if codes is None:
        return None
    out = []
    for code in codes:
        matches = [s for s in stored if s.lower() == code.lower()]
        out.append(code if code in stored or len(matches) != 1 else matches[0])
    return out


def collection_name(text: str, workspace: str | None) -> str:
    """A collection's full name from ``text``: the name itself, or a prefix only one collection has."""
    from rasteret_core.workspace import list_collections

    names = [c["name"] for c in list_collections(workspace)]
    if text in names:
        return text
    matching = [n for n in names if n.startswith(text)]
    if len(matching) == 1:
        return matching[0]
    if len(matching) > 1:
        raise click.BadParameter(f"{text!r} names {len(matching)} collections: {', '.join(matching[:5])}",
                                 param_hint="COLLECTION")
    return text  # not found: the library's error lists what the workspace holds


def read_geometries(path: str) -> Any:
    """The polygons of an AOI file (GeoJSON, GeoPackage, GeoParquet); one line naming the file when unreadable."""
    import geopandas as gpd

    try:
        return gpd.read_parquet(path) if path.endswith((".parquet", ".geoparquet")) else gpd.read_file(path)
    except Exception as exc:  # pyogrio / pyarrow raise their own types: the reason is what matters here
        reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        fail(f"cannot read the AOI file {path}: {reason}")


def band_codes(text: str | None) -> list[str] | None:
    """``"B04,B08"`` (or repeated spaces) as a list of codes."""
    if text is None:
        return None
    codes = [c for c in text.replace(" ", ",").split(",") if c]
    if not codes:
        raise click.BadParameter("no band codes given", param_hint="--bands")
    return codes


def reader_options(endpoint_url: str | None, retries: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if retries is not None:
        options["retries"] = retries
    return options


def echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=1, default=str))


def fail(message: str, code: int = EXIT_FAILED) -> None:
    """Print ``rasteret: error: <message>`` to stderr and exit with ``code``."""
    click.echo(f"rasteret: error: {message}", err=True)
    sys.exit(code)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Warnings to stderr as one line each; rasteret's own errors as one line and exit code 1
    (3 for an empty result), instead of a traceback."""
    from rasteret_core.errors import CollectionExistsError, EmptyResultError, RasteretError

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except EmptyResultError as err:
            _flush(caught)
            fail(str(err), EXIT_EMPTY)
        except CollectionExistsError as err:  # the library's advice is Python's: give the flags
            _flush(caught)
            fail(str(err).split(";")[0] + "; pass --overwrite to replace it or --refresh to add or refresh dates")
        except (RasteretError, ValueError, FileNotFoundError, PermissionError) as err:
            _flush(caught)
            fail(str(err))
        _flush(caught)


def _flush(caught: list[warnings.WarningMessage]) -> None:
    from rasteret_core.errors import RasteretWarning

    said = set()
    for w in caught:
        if issubclass(w.category, (RasteretWarning, UserWarning)) and not issubclass(w.category, DeprecationWarning):
            if str(w.message) not in said:  # a message once, however many steps warned it
                said.add(str(w.message))
                click.echo(f"rasteret: warning: {w.message}", err=True)
    caught.clear()
