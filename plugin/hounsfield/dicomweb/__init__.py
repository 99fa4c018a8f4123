"""The DICOMweb routes the plugin answers itself: STOW-RS, and the two searches and
retrievals that share its URIs (``/dicom-web/studies`` and ``/dicom-web/studies/{uid}``).

Orthanc's DICOMweb plugin (1.7) reports an object its store discarded as stored, so STOW-RS
must be ours; Orthanc 1.10 routes both methods of a URI to one owner, so the QIDO-RS study
search and the WADO-RS study retrieval on those URIs come with it. A series' metadata is
answered from a copy kept ready for the viewer (``series_metadata``). Everything else under
``/dicom-web/`` (series searches, instances, study metadata, frames, rendered) stays with the
DICOMweb plugin.
"""

import ctypes

from hounsfield.config import DICOMWEB_ROOT as ROOT

# The URI patterns taken from the DICOMweb plugin (Orthanc's regular-expression syntax),
# named to the route-claims plugin (plugin/native/route_claims.c) and registered by the adapter.
CLAIMED_ROUTES = (ROOT + "studies", ROOT + "studies/([^/]+)")
CLAIMS_VARIABLE = "HOUNSFIELD_CLAIMED_ROUTES"  # read by the route-claims plugin as it loads
LOADED_VARIABLE = "HOUNSFIELD_ROUTE_CLAIMS_LOADED"  # set by it once it has claimed them


def route_claims_loaded() -> bool:
    """Whether the route-claims plugin claimed our routes. Read from the C environment:
    Python's ``os.environ`` is a copy taken before the plugin ran."""
    libc = ctypes.CDLL(None)
    libc.getenv.restype = ctypes.c_char_p
    return libc.getenv(LOADED_VARIABLE.encode()) is not None
