"""Image files in and out (tifffile for TIFF, imageio for PNG/JPEG)."""

from .files import read_image, write_image

__all__ = ["read_image", "write_image"]
