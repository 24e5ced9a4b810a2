"""Finding items: STAC API search (pystac-client) and local items files, with one filter set."""

from rasteret_core.errors import ItemsFileError, StacSearchError
from rasteret_core.stac.local_items import load_items
from rasteret_core.stac.sources import DataSource, DataSources
from rasteret_core.stac.search import make_filters, parse_datetime_range, search, SearchFilters, SearchResult

__all__ = [
    "DataSource", "DataSources", "search", "SearchResult", "SearchFilters", "StacSearchError", "ItemsFileError",
    "load_items", "make_filters", "parse_datetime_range",
]
