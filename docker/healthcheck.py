"""The container's health check: does this instance answer ``/api/health``?

Run by Docker inside the container (``HEALTHCHECK`` in docker/Dockerfile, ``healthcheck`` in
docker/compose.yaml) with the venv's Python, since the image has no curl or wget. Healthy
means *answering*: ``/api/health`` is open to everyone and says 200 when every component is
healthy, 503 when one is not (low disk, a worker being restarted...). Either proves Orthanc is
up with the plugin and its tables made, which is what starting the next instance waits for;
the components' states are for monitoring, in the body. Exit status 0: healthy, 1: not.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

ANSWERING = (200, 503)


def main() -> int:
    port = os.environ.get("ORTHANC__HTTP_PORT", "8042")
    # No proxy from the environment: this request stays inside the container.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(f"http://127.0.0.1:{port}/api/health", timeout=5) as answer:
            status = answer.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:  # refused, timed out: not started, or dead
        print(f"no answer from port {port}: {error}", file=sys.stderr)
        return 1
    return 0 if status in ANSWERING else 1


if __name__ == "__main__":
    sys.exit(main())
