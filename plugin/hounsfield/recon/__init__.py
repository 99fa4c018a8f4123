"""CBCT reconstruction: projections in (DICOM), RTK in a worker, a CT series out.

Registered as the ``hounsfield.recon`` extension. Nothing here imports ITK/RTK at
module level: the plugin process never loads them, workers do (once, at start-up).
"""

from hounsfield.recon.extension import register

__all__ = ["register"]
