"""The Zarr codec a virtual COG needs beyond Zarr's own: TIFF's horizontal predictor.

TIFF predictor 2 stores each row's differences (``x[i] - x[i-1]``, wrapping integer
arithmetic); decoding is a cumulative sum along each row. Zarr 3 has no such codec, so it is
registered here as ``rasteret.tiff_predictor_2`` (an array-to-array codec after the bytes
codec): a Zarr reader decodes such a store once this module is imported, which
:func:`rasteret_core.collection.virtual_zarr.open_virtual_zarr` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from zarr.abc.codec import ArrayArrayCodec
from zarr.registry import register_codec

NAME = "rasteret.tiff_predictor_2"


@dataclass(frozen=True)
class TiffHorizontalPredictor(ArrayArrayCodec):
    """TIFF predictor 2 (horizontal differencing) on the last axis of integer chunks."""

    is_fixed_size = True

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TiffHorizontalPredictor":
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return {"name": NAME}

    def resolve_metadata(self, chunk_spec: Any) -> Any:
        return chunk_spec

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: Any) -> int:
        return input_byte_length

    async def _decode_single(self, chunk_array: Any, chunk_spec: Any) -> Any:
        data = chunk_array.as_numpy_array()
        return chunk_spec.prototype.nd_buffer.from_numpy_array(np.cumsum(data, axis=-1, dtype=data.dtype))

    async def _encode_single(self, chunk_array: Any, chunk_spec: Any) -> Any:
        data = chunk_array.as_numpy_array()
        diff = np.empty_like(data)
        diff[..., :1] = data[..., :1]
        np.subtract(data[..., 1:], data[..., :-1], out=diff[..., 1:], dtype=data.dtype, casting="unsafe")
        return chunk_spec.prototype.nd_buffer.from_numpy_array(diff)


register_codec(NAME, TiffHorizontalPredictor)
