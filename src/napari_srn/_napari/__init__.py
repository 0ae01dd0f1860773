"""The napari layer of napari-srn: everything that imports napari or Qt lives in this package.

The core (``napari_srn`` outside ``_napari``) never imports from here, so scripts and the command
line work without napari installed. napari finds these modules through ``napari.yaml``.
"""
