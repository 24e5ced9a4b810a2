"""libFuzzer harness (atheris) for the TIFF parser and tile decoder: any exception other than
the project's CogError is a finding. Run by test_hostile_files with a corpus of real files."""

import sys

import atheris

# third-party modules load uninstrumented: coverage guidance is spent on the project's code
import aiohttp  # noqa: F401
import imagecodecs  # noqa: F401
import numpy  # noqa: F401

with atheris.instrument_imports(include=["rasteret_core"]):
    from rasteret_core.cog import CogError
    from rasteret_core.cog.codecs import check_supported, decode_tile
    from rasteret_core.cog.header import build_header
    from rasteret_core.cog.tiff import SparseBuffer, parse_tiff


def one_input(data: bytes) -> None:
    buf = SparseBuffer(len(data))
    buf.add(0, data)
    try:
        header = build_header(parse_tiff(buf, "mem://fuzz.tif"), "mem://fuzz.tif", len(data))
        check_supported(header)
        if header.tile_offsets.size:
            start, size = int(header.tile_offsets[0]), int(header.tile_byte_counts[0])
            decode_tile(header, data[start:start + size])
    except CogError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
