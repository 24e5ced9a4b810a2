"""Finding items: STAC API search (pystac-client) and local items files, with one filter set."""

from rasteret_core.stac.local_items import ItemsFileError, load_items
from rasteret_core.stac.search import (
    SearchFilters,
    SearchResult,
    StacSearchError,
    make_filters,
    parse_datetime_range,
    search,
)

__all__ = [
    "search", "SearchResult", "SearchFilters", "StacSearchError", "ItemsFileError",
    "load_items", "make_filters", "parse_datetime_range",
]
