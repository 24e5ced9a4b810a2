"""Other tools' views of a collection: TorchGeo (:mod:`rasteret_core.interop.torchgeo`).

Tables and virtual Zarr live with the collection itself (:mod:`rasteret_core.collection.tables`,
:mod:`rasteret_core.collection.virtual_zarr`): they need only the stored rows.
"""
