"""The SRN network (:mod:`.srn`), its blocks, its config, and safe weights I/O."""

from .config import VARIANTS, SRNConfig, config_for_variant

__all__ = ["VARIANTS", "SRNConfig", "config_for_variant"]
