"""What the API test scripts share: TAP output and HTTP over a Unix socket."""
import http.client
import socket
import sys

_count = {"n": 0, "failed": 0}


def tap(ok, name, detail=""):
    """One TAP line; a failure prints the last lines of @detail as comments."""
    _count["n"] += 1
    if not ok:
        _count["failed"] += 1
    print(("ok" if ok else "not ok") + " %d - %s" % (_count["n"], name))
    if not ok and detail:
        for line in str(detail).splitlines()[-20:]:
            print("#   " + line)
    sys.stdout.flush()


def skip(name, why):
    _count["n"] += 1
    print("ok %d - %s # SKIP %s" % (_count["n"], name, why))


def finish():
    """The plan line, then exit 1 if any check failed."""
    print("1..%d" % _count["n"])
    sys.exit(1 if _count["failed"] else 0)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 to an API socket (Banyan's, or Firecracker's name for it)."""

    def __init__(self, path, timeout=30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s
