"""The container's HEALTHCHECK: is the CalDAV server answering?

Sends ``OPTIONS`` to ``$RADICALE_GRAPH_HEALTHCHECK_URL`` (default ``http://127.0.0.1:5232/``)
and exits 0 when an HTTP answer below 500 arrives within 5 seconds, else 1. ``OPTIONS`` needs
no login and does not call Microsoft Graph, so a slow or unreachable tenant does not mark the
container unhealthy; a server that is down, hung or answering 5xx does. Standard library only
(the image has no curl).
"""

import os
import sys
import urllib.error
import urllib.request

URL = os.environ.get("RADICALE_GRAPH_HEALTHCHECK_URL", "http://127.0.0.1:5232/")


def main() -> int:
    request = urllib.request.Request(URL, method="OPTIONS")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    except OSError as error:
        print(f"healthcheck: {URL}: {error}", file=sys.stderr)
        return 1
    print(f"healthcheck: {URL}: HTTP {status}")
    return 0 if status < 500 else 1


if __name__ == "__main__":
    sys.exit(main())
