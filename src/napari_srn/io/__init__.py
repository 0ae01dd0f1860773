"""Image files in and out (tifffile for TIFF, imagecodecs for PNG, imageio for JPEG and others)."""

from .files import ImageFile, open_image, read_image, write_image

__all__ = ["ImageFile", "open_image", "read_image", "write_image"]
