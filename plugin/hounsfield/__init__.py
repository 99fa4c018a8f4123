"""Hounsfield: an imaging department inside Orthanc.

Everything in this package is plain Python and imports without Orthanc, except
``orthanc_adapter``, the one module that talks to the ``orthanc`` module.
"""
