"""The roles a user or an API key can have."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    RADIOLOGIST = "radiologist"
    TECHNICIAN = "technician"
    REFERRER = "referrer"
    # Operations only: Orthanc's Prometheus metrics and the health report's details, no
    # patient data (a monitoring scraper's service account).
    METRICS = "metrics"


STAFF = frozenset({Role.ADMIN, Role.RADIOLOGIST, Role.TECHNICIAN})
PEOPLE = STAFF | {Role.REFERRER}  # who reads images (and the viewer's shell)
OPERATIONS = frozenset({Role.ADMIN, Role.METRICS})  # who sees how the servers are doing


def grantable(owner: Role) -> frozenset[Role]:
    """The roles a key made by an ``owner`` may have: an admin's, any; anyone else's, their
    own (roles other than admin are not ordered: a technician's key must not read reports,
    a radiologist's must not see the servers' figures)."""
    return frozenset(Role) if owner is Role.ADMIN else frozenset({owner})
