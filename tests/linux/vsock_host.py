#!/usr/bin/python3
"""Host side of the vsock tests, speaking Firecracker's Unix-socket protocol.

  vsock_host.py serve-echo PATH_PORT              echo every connection (threads), until killed
  vsock_host.py serve-sink PATH_PORT OUT          one connection: "sha256=... bytes=N eof=1" to OUT
  vsock_host.py to-guest UDS OUT [MIB]            the host-initiated checks, key=value lines to OUT
  vsock_host.py send UDS PORT BYTES               CONNECT, send BYTES zeros, wait for the close;
                                                  prints "sent BYTES in SECS s" (benchmark)
  vsock_host.py flood UDS PORT OUT KIBPS          CONNECT, send the test pattern at KIBPS KiB/s
                                                  until the connection breaks; "bytes=N" to OUT
  vsock_host.py tcp-flood ADDR PORT OUT STOP KIBPS
                                                  one TCP connection: the pattern at KIBPS until
                                                  the file STOP exists, then close and wait for
                                                  the peer's close; "bytes=N" to OUT, "done=1" last
  vsock_host.py echo-check UDS PORT               CONNECT (retrying for 60 s), 100 KiB echoed back
                                                  intact: prints "echo=ok" (else "echo=bad")

The test pattern (vsock-tool checks it): 8-byte little-endian counters
0, 1, 2, ...; a byte lost, duplicated or changed shows at its offset.
"""
import array
import hashlib
import os
import socket
import sys
import threading
import time

CHUNK = 256 * 1024


def guest_connect(uds, port, deadline):
    """CONNECT to a guest port through the VMM's socket; retries until the guest listens."""
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(uds)
            s.sendall(b"CONNECT %d\n" % port)
            line = b""
            while not line.endswith(b"\n"):
                c = s.recv(1)
                if not c:
                    break
                line += c
            if line.startswith(b"OK "):
                return s, int(line[3:])
        except OSError:
            pass
        s.close()
        if time.monotonic() > deadline:
            raise TimeoutError("guest port %d never answered" % port)
        time.sleep(0.5)


def recv_all(s):
    out = bytearray()
    while True:
        b = s.recv(CHUNK)
        if not b:
            return bytes(out)
        out += b


def echo_one(s):
    with s:
        while True:
            b = s.recv(CHUNK)
            if not b:
                return
            s.sendall(b)


def listen(path):
    if os.path.exists(path):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(16)
    return srv


def serve_echo(path):
    srv = listen(path)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=echo_one, args=(c,), daemon=True).start()


def serve_sink(path, out):
    srv = listen(path)
    c, _ = srv.accept()
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(CHUNK)
        if not b:
            break
        h.update(b)
        n += len(b)
    with open(out, "w") as f:
        f.write("sha256=%s\nbytes=%d\neof=1\n" % (h.hexdigest(), n))
    c.close()


def to_guest(uds, out, mib):
    res = {}
    deadline = time.monotonic() + 300

    # Several echo connections at once to the guest's port 5000.
    def echo_check(i):
        s, _ = guest_connect(uds, 5000, deadline)
        data = os.urandom(256 * 1024 + i)
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        got = bytearray()
        while len(got) < len(data):
            b = s.recv(CHUNK)
            if not b:
                break
            got += b
        t.join()
        s.shutdown(socket.SHUT_WR)
        closed = s.recv(1) == b""     # the guest closes after our shutdown
        s.close()
        res["echo%d" % i] = "ok" if bytes(got) == data and closed else "bad"

    threads = [threading.Thread(target=echo_check, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # A big transfer to the guest's sink on port 5001; closing is the end.
    s, port = guest_connect(uds, 5001, deadline)
    res["hostport"] = port
    h = hashlib.sha256()
    left = mib << 20
    while left:
        b = os.urandom(min(CHUNK, left))
        h.update(b)
        s.sendall(b)
        left -= len(b)
    s.close()
    res["sent_sha256"] = h.hexdigest()

    # No guest listener on port 9999: the guest resets, we get no OK.
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(uds)
    s.sendall(b"CONNECT 9999\n")
    s.settimeout(30)
    try:
        res["noport"] = "closed" if recv_all(s) == b"" else "answered"
    except OSError as e:
        res["noport"] = "error %s" % e
    with open(out, "w") as f:
        for k, v in res.items():
            f.write("%s=%s\n" % (k, v))


def send(uds, port, nbytes):
    s, _ = guest_connect(uds, port, time.monotonic() + 300)
    buf = bytes(CHUNK)
    t0 = time.monotonic()
    left = nbytes
    while left:
        n = min(CHUNK, left)
        s.sendall(buf[:n])
        left -= n
    s.shutdown(socket.SHUT_WR)
    recv_all(s)
    print("sent %d in %.3f s" % (nbytes, time.monotonic() - t0), flush=True)


def pattern(offset, n):
    """Bytes [offset, offset + n) of the test pattern (both multiples of 8)."""
    a = array.array("Q", range(offset // 8, (offset + n) // 8))
    if sys.byteorder != "little":
        a.byteswap()
    return a.tobytes()


def write_kv(out, **kv):
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        for k, v in kv.items():
            f.write("%s=%s\n" % (k, v))
    os.replace(tmp, out)


def paced_send(s, kibps, until):
    """Send the pattern at about KIBPS KiB/s until until() or an error; returns the bytes sent."""
    chunk, sent, t0 = 16 * 1024, 0, time.monotonic()
    while not until(sent):
        try:
            s.sendall(pattern(sent, chunk))
        except OSError:
            break
        sent += chunk
        ahead = sent / (kibps * 1024.0) - (time.monotonic() - t0)
        if ahead > 0:
            time.sleep(ahead)
        elif ahead < -1:  # the peer stalled (a paused VM): no burst to catch up
            t0 -= ahead + 1
    return sent


def flood(uds, port, out, kibps):
    s, _ = guest_connect(uds, port, time.monotonic() + 300)

    def progress(sent):
        write_kv(out, bytes=sent)
        return False

    write_kv(out, bytes=paced_send(s, kibps, progress), done=1)


def tcp_flood(addr, port, out, stop, kibps):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, port))
    srv.listen(1)
    c, _ = srv.accept()
    srv.close()

    def until(sent):
        write_kv(out, bytes=sent)
        return os.path.exists(stop)

    sent = paced_send(c, kibps, until)
    c.shutdown(socket.SHUT_WR)
    c.settimeout(300)
    try:
        recv_all(c)
    except OSError:
        pass
    write_kv(out, bytes=sent, done=1)


def echo_check(uds, port):
    ok = False
    try:
        s, _ = guest_connect(uds, port, time.monotonic() + 60)
        data = os.urandom(100 * 1024)
        t = threading.Thread(target=s.sendall, args=(data,))
        t.start()
        got = bytearray()
        s.settimeout(60)
        while len(got) < len(data):
            b = s.recv(CHUNK)
            if not b:
                break
            got += b
        t.join()
        ok = bytes(got) == data
    except (OSError, TimeoutError):
        pass
    print("echo=%s" % ("ok" if ok else "bad"), flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "serve-echo":
        serve_echo(sys.argv[2])
    elif cmd == "serve-sink":
        serve_sink(sys.argv[2], sys.argv[3])
    elif cmd == "to-guest":
        to_guest(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 100)
    elif cmd == "send":
        send(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "flood":
        flood(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
    elif cmd == "tcp-flood":
        tcp_flood(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif cmd == "echo-check":
        echo_check(sys.argv[2], int(sys.argv[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
