"""STAC documents for loading into the test STAC API."""

from __future__ import annotations


def collection_document(collection_id: str, description: str = "test collection") -> dict:
    """A minimal valid STAC Collection (global extent, open interval)."""
    return {
        "type": "Collection",
        "stac_version": "1.0.0",
        "id": collection_id,
        "description": description,
        "license": "proprietary",
        "extent": {
            "spatial": {"bbox": [[-180, -90, 180, 90]]},
            "temporal": {"interval": [["1970-01-01T00:00:00Z", None]]},
        },
        "links": [],
    }
