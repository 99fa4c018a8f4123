"""The roles a user can have."""

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    RADIOLOGIST = "radiologist"
    TECHNICIAN = "technician"
    REFERRER = "referrer"


STAFF = frozenset({Role.ADMIN, Role.RADIOLOGIST, Role.TECHNICIAN})
