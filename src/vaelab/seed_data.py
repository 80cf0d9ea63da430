"""Old name of `vaelab.small_data`, kept so that existing imports keep working."""

from vaelab.small_data import CAR_COUNTS, NEWBORN_WEIGHTS_G

__all__ = ["CAR_COUNTS", "NEWBORN_WEIGHTS_G"]
