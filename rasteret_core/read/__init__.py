"""AOI reads: stored headers -> pixel windows -> concurrent tile reads -> clip -> xarray."""

from rasteret_core.errors import GeometryError
from rasteret_core.raster.geometry import named_geometries
from rasteret_core.raster.windows import aoi_window
from rasteret_core.read.aoi import AoiRaster, AoiReadResult, aread_aois, read_aois, ReadFailure
from rasteret_core.read.diagnosis import first_causes, ReadDiagnosis, s3_target
from rasteret_core.read.points import asample_points, PointSamples, sample_points
from rasteret_core.read.xarray import per_geometry_datasets, stack_datasets

__all__ = [
    "AoiRaster", "AoiReadResult", "GeometryError", "ReadFailure", "aoi_window", "aread_aois",
    "named_geometries", "per_geometry_datasets", "read_aois", "stack_datasets",
    "PointSamples", "asample_points", "sample_points", "ReadDiagnosis", "first_causes", "s3_target",
]
