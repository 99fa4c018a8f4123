"""Orthanc's ``PythonScript``: put our code and its venv on ``sys.path``, then hand over.

Orthanc embeds Debian's Python 3.11; the venv (made with /usr/bin/python3 by
``make run``) holds our pinned requirements. Nothing else happens here.
"""

import os
import site
import sys

PLUGIN_DIRECTORY = os.path.dirname(os.path.abspath(__file__))
VENV = os.environ.get("HOUNSFIELD_VENV", os.path.join(os.path.dirname(PLUGIN_DIRECTORY), ".venv"))
SITE_PACKAGES = os.path.join(
    VENV, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}", "site-packages"
)

if not os.path.isdir(SITE_PACKAGES):
    raise RuntimeError(f"Hounsfield: no venv at {VENV}; run 'make run' to create it")

known = set(sys.path)
site.addsitedir(SITE_PACKAGES)  # also reads the venv's .pth files
added = [path for path in sys.path if path not in known]
sys.path[:] = [PLUGIN_DIRECTORY, *added, *(path for path in sys.path if path not in added)]

from hounsfield.orthanc_adapter import install  # noqa: E402

install(worker_python=os.path.join(VENV, "bin", "python"))
