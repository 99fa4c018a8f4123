"""Orthanc's changes (stable study, new instance...) delivered durably to bound handlers."""
