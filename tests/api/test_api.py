#!/usr/bin/env python3
"""API conformance suite: a real `banyan run --api-socket` process, driven
over its Unix socket with the standard library only. TAP on stdout.

Usage: test_api.py BANYAN GUEST_DIR preboot|hostile|vm
  preboot  every endpoint and error before boot: needs no KVM
  hostile  only the hostile-input part of preboot (FIFOs, slow clients,
           descriptor leaks, invalid UTF-8, a guest larger than the host)
  vm       boot the tiny test guests: state machine, pause/resume,
           metrics, Ctrl-Alt-Del, --config round trip, banyan ctl
"""
import http.client
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

from apilib import UnixHTTPConnection, finish, tap

BANYAN, GUESTS, PART = sys.argv[1], sys.argv[2], sys.argv[3]
TMP = tempfile.mkdtemp(prefix="banyan-api-")
VMMS = []  # every process started, killed at the end whatever happens


class Vmm:
    """One banyan process with its API socket; console output in a file."""

    def __init__(self, name, *args, wait_socket=True, sock=None):
        self.sock = sock or os.path.join(TMP, name + ".sock")
        self.out = os.path.join(TMP, name + ".out")
        self.err = os.path.join(TMP, name + ".err")
        self.proc = subprocess.Popen(
            [BANYAN, "run", "--api-socket", self.sock] + list(args),
            stdin=subprocess.DEVNULL, stdout=open(self.out, "wb"), stderr=open(self.err, "wb"))
        VMMS.append(self)
        if wait_socket:
            for _ in range(200):
                if os.path.exists(self.sock) or self.proc.poll() is not None:
                    break
                time.sleep(0.02)

    def req(self, method, path, body=None, raw=None, timeout=30):
        c = UnixHTTPConnection(self.sock, timeout)
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        headers = {"Content-Type": "application/json"} if data is not None else {}
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        text = r.read().decode()
        c.close()
        try:
            doc = json.loads(text) if text and "json" in (r.getheader("Content-Type") or "") else text
        except ValueError:
            doc = text
        return r.status, doc

    def output(self):
        with open(self.out, "rb") as f:
            return f.read().decode(errors="replace")

    def stderr(self):
        with open(self.err, "rb") as f:
            return f.read().decode(errors="replace")

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return "timeout"

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def fault(doc):
    return doc.get("fault_message", "") if isinstance(doc, dict) else ""


def expect(v, name, method, path, body=None, status=204, contains=None, raw=None):
    """One request; checks the status and, for errors, the fault_message."""
    try:
        st, doc = v.req(method, path, body, raw)
    except Exception as e:  # noqa: BLE001 - report any failure as a test result
        tap(False, name, repr(e))
        return None
    ok = st == status
    if ok and status >= 400:
        ok = bool(fault(doc)) and (contains is None or contains in fault(doc))
    tap(ok, name, "HTTP %d %r (wanted %d%s)" % (st, doc, status,
                                                 ", '%s'" % contains if contains else ""))
    return doc


def raw_status(path, data):
    """Send raw bytes, return the HTTP status of the answer (0 if none)."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(20)
    s.connect(path)
    try:
        s.sendall(data)
    except OSError:
        pass  # the server may answer and close before reading everything
    try:
        line = s.recv(64).split(b"\r\n")[0].split()
        return int(line[1]) if len(line) > 1 else 0
    except (OSError, ValueError):
        return 0
    finally:
        s.close()


def raw_request(path, data, timeout=10):
    """Send raw bytes; (status, body bytes) of the answer, (0, b"") if none."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    buf = b""
    try:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except OSError:
        pass
    finally:
        s.close()
    head, _, body = buf.partition(b"\r\n\r\n")
    line = head.split(b"\r\n")[0].split()
    try:
        return int(line[1]), body
    except (IndexError, ValueError):
        return 0, b""


def raw_put(path, url, body_bytes):
    return raw_request(path, b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       b"Content-Length: %d\r\nConnection: close\r\n\r\n%s"
                       % (url, len(body_bytes), body_bytes))


def strict_json(body):
    """The body as JSON if it is valid UTF-8 JSON, else None."""
    try:
        return json.loads(body.decode("utf-8", errors="strict"))
    except ValueError:
        return None


def timed(v, method, path, body=None, timeout=5):
    """A request that must be answered within @timeout: (status, doc, seconds); status 0 on timeout."""
    t0 = time.time()
    try:
        st, doc = v.req(method, path, body, timeout=timeout)
    except Exception as e:  # noqa: BLE001
        return 0, repr(e), time.time() - t0
    return st, doc, time.time() - t0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def ctl(sock, *args):
    p = subprocess.run([BANYAN, "ctl", "--api-socket", sock] + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def ticks(v):
    return v.output().count("tick ")


def wait_for(pred, secs=20):
    end = time.time() + secs
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return False


def preboot_config(v):
    expect(v, "PUT /machine-config", "PUT", "/machine-config", {"vcpu_count": 2, "mem_size_mib": 128})
    st, doc = v.req("GET", "/machine-config")
    tap(st == 200 and doc.get("vcpu_count") == 2 and doc.get("mem_size_mib") == 128,
        "GET /machine-config reflects the PUT", doc)
    expect(v, "PATCH /machine-config", "PATCH", "/machine-config", {"vcpu_count": 3})
    st, doc = v.req("GET", "/machine-config")
    tap(doc.get("vcpu_count") == 3 and doc.get("mem_size_mib") == 128,
        "PATCH changes only the given field", doc)
    bad = [
        ("missing required field", {"vcpu_count": 1}, "missing required field 'mem_size_mib'"),
        ("unknown field", {"vcpu_count": 1, "mem_size_mib": 64, "colour": 1}, "unknown field 'colour'"),
        ("wrong type", {"vcpu_count": "2", "mem_size_mib": 64}, "'vcpu_count' must be an integer"),
        ("float for an integer", {"vcpu_count": 1.5, "mem_size_mib": 64}, "must be an integer"),
        ("vcpu_count 0", {"vcpu_count": 0, "mem_size_mib": 64}, "between 1 and 254"),
        ("vcpu_count 255", {"vcpu_count": 255, "mem_size_mib": 64}, "between 1 and 254"),
        ("mem_size_mib 1", {"vcpu_count": 1, "mem_size_mib": 1}, "mem_size_mib"),
        ("huge mem_size_mib", {"vcpu_count": 1, "mem_size_mib": 2**63}, "mem_size_mib"),
        ("smt true", {"vcpu_count": 2, "mem_size_mib": 64, "smt": True}, "smt"),
        ("cpu_template T2", {"vcpu_count": 2, "mem_size_mib": 64, "cpu_template": "T2"}, "cpu_template"),
        ("not an object", [1, 2], "expected a JSON object"),
    ]
    for name, body, msg in bad:
        expect(v, "machine-config, %s: 400" % name, "PUT", "/machine-config", body, 400, msg)
    st, doc = v.req("GET", "/machine-config")
    tap(doc.get("vcpu_count") == 3 and doc.get("mem_size_mib") == 128,
        "rejected bodies left machine-config untouched", doc)


def preboot_malformed(v):
    cases = [
        ("malformed JSON", "{\"vcpu_count\": ", "malformed JSON"),
        ("trailing garbage", "{\"vcpu_count\": 1, \"mem_size_mib\": 64} x", "malformed JSON"),
        ("two values", "{} {}", "malformed JSON"),
        ("missing colon", "{\"vcpu_count\" 1}", "malformed JSON"),
        ("empty body", "", "empty"),
        ("nesting too deep", "[" * 100 + "]" * 100, "malformed JSON"),
    ]
    for name, raw, msg in cases:
        expect(v, "%s: 400" % name, "PUT", "/machine-config", raw=raw, status=400, contains=msg)
    tap(raw_status(v.sock, b"PUT /machine-config HTTP/1.1\r\nHost: x\r\n"
                           b"Content-Length: 70000\r\n\r\n") == 400,
        "a declared 70 KB body: 400 (Firecracker's) before it is sent")
    chunk = b"%x\r\n%s\r\n" % (10000, b"x" * 10000)
    tap(raw_status(v.sock, b"PUT /machine-config HTTP/1.1\r\nHost: x\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n" + chunk * 7 + b"0\r\n\r\n") == 400,
        "a chunked 70 KB body: 400")
    expect(v, "unknown path: 400", "GET", "/no/such/path", status=400,
           contains="Invalid request method and/or path")
    expect(v, "wrong method: 400", "DELETE", "/machine-config", status=400,
           contains="Invalid request method and/or path")
    expect(v, "drive path without id: 400", "PUT", "/drives/", {}, 400, "Invalid request")


TAPS = []  # TAP devices this run created, removed at the end


def make_taps(*names):
    """Create persistent TAPs (needs CAP_NET_ADMIN); the names, or [] when that is refused."""
    for n in names:
        r = subprocess.run(["ip", "tuntap", "add", "dev", n, "mode", "tap"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if r.returncode != 0 and not os.path.exists("/sys/class/net/" + n):
            return []
        TAPS.append(n)
    return list(names)


def remove_taps():
    for n in TAPS:
        subprocess.run(["ip", "tuntap", "del", "dev", n, "mode", "tap"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def preboot_devices(v, kernel):
    expect(v, "PUT /boot-source", "PUT", "/boot-source",
           {"kernel_image_path": kernel, "boot_args": "console=ttyS0 quiet"})
    expect(v, "boot-source without kernel: 400", "PUT", "/boot-source", {"boot_args": "x"}, 400,
           "kernel_image_path")
    expect(v, "boot-source empty path: 400", "PUT", "/boot-source", {"kernel_image_path": ""}, 400,
           "must not be empty")
    disk = os.path.join(TMP, "disk.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    rootfs = {"drive_id": "rootfs", "path_on_host": disk, "is_root_device": True, "is_read_only": False}
    expect(v, "PUT /drives/rootfs", "PUT", "/drives/rootfs", rootfs)
    expect(v, "PUT /drives/data", "PUT", "/drives/data",
           {"drive_id": "data", "path_on_host": disk, "is_root_device": False, "cache_type": "Writeback"})
    expect(v, "drive id mismatch: 400", "PUT", "/drives/other", rootfs, 400, "does not match")
    expect(v, "a second root device: 400", "PUT", "/drives/root2",
           dict(rootfs, drive_id="root2"), 400, "root device already exists")
    expect(v, "invalid drive id: 400", "PUT", "/drives/a.b",
           dict(rootfs, drive_id="a.b"), 400, "invalid id")
    limited = {"bandwidth": {"size": 1048576, "one_time_burst": 0, "refill_time": 100},
               "ops": {"size": 100, "one_time_burst": 50, "refill_time": 1000}}
    expect(v, "drive with a rate_limiter", "PUT", "/drives/rootfs", dict(rootfs, rate_limiter=limited))
    expect(v, "drive with rate_limiter {} (no limit)", "PUT", "/drives/data",
           {"drive_id": "data", "path_on_host": disk, "is_root_device": False, "rate_limiter": {}})
    for name, rl, why in [
            ("zero refill_time", {"bandwidth": {"size": 1, "refill_time": 0}}, "refill_time"),
            ("no refill_time", {"ops": {"size": 1}}, "refill_time"),
            ("a size past 2^60", {"ops": {"size": 1 << 61, "refill_time": 1}}, "size"),
            ("a size past 2^64", {"ops": {"size": 1 << 65, "refill_time": 1}}, ""),
            ("a negative burst", {"ops": {"size": 1, "refill_time": 1, "one_time_burst": -1}},
             "one_time_burst"),
            ("an unknown bucket", {"bytes": {}}, "unknown field 'bytes'"),
            ("a string size", {"bandwidth": {"size": "1M", "refill_time": 1}}, "size")]:
        expect(v, "drive rate_limiter with %s: 400" % name, "PUT", "/drives/rootfs",
               dict(rootfs, rate_limiter=rl), 400, why)
    expect(v, "drive bad cache_type: 400", "PUT", "/drives/rootfs",
           dict(rootfs, cache_type="Bogus"), 400, "cache_type")
    expect(v, "PATCH /drives before boot: 400 (Firecracker: PUT changes a drive)", "PATCH",
           "/drives/data", {"drive_id": "data", "path_on_host": disk}, 400, "running VM")
    expect(v, "drive with a missing file: 400 at PUT", "PUT", "/drives/gone",
           {"drive_id": "gone", "path_on_host": os.path.join(TMP, "no-such.img"),
            "is_root_device": False}, 400, "No such file")
    expect(v, "boot-source with a missing kernel: 400 at PUT", "PUT", "/boot-source",
           {"kernel_image_path": os.path.join(TMP, "no-such-kernel")}, 400, "No such file")
    expect(v, "boot-source with a missing initrd: 400 at PUT", "PUT", "/boot-source",
           {"kernel_image_path": kernel, "initrd_path": os.path.join(TMP, "no-initrd")}, 400,
           "initrd_path")
    empty = os.path.join(TMP, "placeholder.img")
    open(empty, "wb").close()
    expect(v, "a 0-byte drive file (a placeholder): 204", "PUT", "/drives/d0",
           {"drive_id": "d0", "path_on_host": empty, "is_root_device": False})
    for i in range(1, 14):
        v.req("PUT", "/drives/d%d" % i, {"drive_id": "d%d" % i, "path_on_host": disk,
                                          "is_root_device": False})
    st, doc = v.req("GET", "/vm/config")
    tap(len(doc.get("drives", [])) == 16, "16 drives accepted", doc)
    expect(v, "a seventeenth drive: 400", "PUT", "/drives/d16",
           {"drive_id": "d16", "path_on_host": disk, "is_root_device": False}, 400, "at most 16")
    expect(v, "PUT a missing TAP: 400 (Firecracker opens it at PUT)", "PUT",
           "/network-interfaces/eth0",
           {"iface_id": "eth0", "host_dev_name": "bnyn-notap0", "guest_mac": "06:00:00:00:00:01"},
           400, "no such network interface")
    expect(v, "PATCH /network-interfaces before boot: 400", "PATCH",
           "/network-interfaces/eth0", {"iface_id": "eth0"}, 400, "running VM")
    taps = preboot_taps(v)
    expect(v, "PATCH /drives rate_limiter before boot: 400", "PATCH", "/drives/data",
           {"drive_id": "data", "rate_limiter": limited}, 400, "running VM")
    if taps:  # Kata sends empty rate limiters
        expect(v, "network-interfaces with rx_rate_limiter {} (Kata's)", "PUT",
               "/network-interfaces/eth0",
               {"iface_id": "eth0", "host_dev_name": taps[0], "guest_mac": "06:00:00:00:00:01",
                "rx_rate_limiter": {},
                "tx_rate_limiter": {"bandwidth": {"size": 125000, "refill_time": 10}}})
    expect(v, "network-interfaces tx_rate_limiter without refill_time: 400", "PUT",
           "/network-interfaces/eth2", {"iface_id": "eth2", "host_dev_name": "bnyn-notap2",
                                        "tx_rate_limiter": {"ops": {"size": 5}}}, 400,
           "tx_rate_limiter.ops")
    expect(v, "PUT /vsock", "PUT", "/vsock", {"guest_cid": 3, "uds_path": os.path.join(TMP, "v.sock")})
    expect(v, "vsock cid 2: 400", "PUT", "/vsock", {"guest_cid": 2, "uds_path": "/x"}, 400, "guest_cid")
    expect(v, "PUT /entropy with a rate_limiter", "PUT", "/entropy",
           {"rate_limiter": {"bandwidth": {"size": 1000, "refill_time": 1000}}})
    expect(v, "entropy rate_limiter with a burst and no size: 400", "PUT", "/entropy",
           {"rate_limiter": {"bandwidth": {"size": 0, "one_time_burst": 5, "refill_time": 1}}}, 400,
           "one_time_burst")
    st, doc = v.req("GET", "/vm/config")
    tap(st == 200 and doc["entropy"]["rate_limiter"]["bandwidth"]["size"] == 1000
        and doc["drives"][0]["rate_limiter"] == limited and doc["drives"][1]["rate_limiter"] is None
        and (not taps or (doc["network-interfaces"][0]["rx_rate_limiter"] is None and
                          doc["network-interfaces"][0]["tx_rate_limiter"]["bandwidth"]["size"] == 125000)),
        "GET /vm/config shows the rate limiters", doc)
    expect(v, "PUT /entropy", "PUT", "/entropy", {})
    expect(v, "entropy unknown field: 400", "PUT", "/entropy", {"x": 1}, 400, "unknown field")
    logf = os.path.join(TMP, "api.log")
    expect(v, "PUT /logger", "PUT", "/logger", {"log_path": logf, "level": "Info"})
    expect(v, "logger bad level: 400", "PUT", "/logger", {"level": "Loud"}, 400, "level")
    expect(v, "logger level in another case (Firecracker takes any)", "PUT", "/logger",
           {"log_path": logf, "level": "wArNiNg"})
    st, doc = v.req("GET", "/vm/config")
    tap((doc.get("logger") or {}).get("level") == "Warning", "... kept as Warning", doc)
    expect(v, "PUT /logger back to Info", "PUT", "/logger", {"log_path": logf, "level": "info"})
    metf = os.path.join(TMP, "metrics.txt")
    expect(v, "FlushMetrics before PUT /metrics: 400", "PUT", "/actions",
           {"action_type": "FlushMetrics"}, 400, "PUT /metrics")
    expect(v, "PUT /metrics", "PUT", "/metrics", {"metrics_path": metf})
    expect(v, "a second PUT /metrics: 400 (set once, as Firecracker)", "PUT", "/metrics",
           {"metrics_path": metf + ".2"}, 400, "already configured")
    expect(v, "FlushMetrics", "PUT", "/actions", {"action_type": "FlushMetrics"})
    expect(v, "FlushMetrics again", "PUT", "/actions", {"action_type": "FlushMetrics"})
    lines = open(metf).read().splitlines() if os.path.exists(metf) else []
    try:
        docs = [json.loads(l) for l in lines]
    except ValueError:
        docs = []
    tap(len(docs) == 2 and all("utc_timestamp_ms" in d and "api_server" in d for d in docs)
        and docs[1]["api_server"]["requests_count"] >= 1
        and docs[1]["api_server"]["requests_count"] < docs[0]["api_server"]["requests_count"] + 5,
        "FlushMetrics wrote one JSON line each, counters since the previous line", lines)
    st, doc = v.req("GET", "/vm/config")
    ok = (st == 200 and doc["boot-source"]["kernel_image_path"] == kernel
          and doc["machine-config"]["vcpu_count"] == 3
          and [d["drive_id"] for d in doc["drives"]][:2] == ["rootfs", "data"]
          and [n["iface_id"] for n in doc["network-interfaces"]] == (["eth0"] if taps else [])
          and doc["vsock"]["guest_cid"] == 3 and doc["entropy"] == {}
          and doc["metrics"]["metrics_path"] == metf)
    tap(ok, "GET /vm/config has every section configured", doc)
    expect(v, "multicast MAC: 400", "PUT", "/network-interfaces/eth1",
           {"iface_id": "eth1", "host_dev_name": "tap1", "guest_mac": "01:00:5e:00:00:01"}, 400, "unicast")
    expect(v, "InstanceStart with more virtio devices than interrupt lines: 400", "PUT",
           "/actions", {"action_type": "InstanceStart"}, 400, "too many virtio devices")


def preboot_taps(v):
    """Interfaces on real TAPs (created here when the host lets us); the TAPs or []."""
    taps = make_taps("bnyn-api0", "bnyn-api1")
    if not taps:
        tap(True, "# SKIP TAP checks: cannot create TAP devices here")
        return []
    expect(v, "PUT /network-interfaces/eth0", "PUT", "/network-interfaces/eth0",
           {"iface_id": "eth0", "host_dev_name": taps[0], "guest_mac": "06:00:00:00:00:01"})
    expect(v, "bad MAC: 400", "PUT", "/network-interfaces/eth1",
           {"iface_id": "eth1", "host_dev_name": taps[1], "guest_mac": "nope"}, 400, "MAC")
    expect(v, "a TAP used twice: 400", "PUT", "/network-interfaces/eth1",
           {"iface_id": "eth1", "host_dev_name": taps[0]}, 400, "used twice")
    expect(v, "a MAC used twice: 400", "PUT", "/network-interfaces/eth1",
           {"iface_id": "eth1", "host_dev_name": taps[1], "guest_mac": "06:00:00:00:00:01"},
           400, "used twice")
    return taps


def preboot_mmds(v):
    """The metadata store and /mmds/config (eth0 exists: preboot_devices)."""
    st, doc = v.req("GET", "/mmds")
    tap(st == 200 and doc == {}, "GET /mmds before any PUT: {}", doc)
    data = {"latest": {"meta-data": {"ami-id": "ami-1", "tags": {"a": "b"}}}}
    expect(v, "PUT /mmds", "PUT", "/mmds", data)
    st, doc = v.req("GET", "/mmds")
    tap(st == 200 and doc == data, "GET /mmds returns what PUT stored", doc)
    expect(v, "PATCH /mmds (merge patch)", "PATCH", "/mmds",
           {"latest": {"meta-data": {"tags": None, "new": "x"}}})
    want = {"latest": {"meta-data": {"ami-id": "ami-1", "new": "x"}}}
    st, doc = v.req("GET", "/mmds")
    tap(doc == want, "PATCH /mmds removed the null member and added the new one", doc)
    expect(v, "PUT /mmds over 51200 bytes: 413", "PUT", "/mmds", {"k": "x" * 51200}, 413,
           "doesn't fit")
    expect(v, "PATCH /mmds over 51200 bytes: 413", "PATCH", "/mmds", {"k": "x" * 51200}, 413,
           "doesn't fit")
    st, doc = v.req("GET", "/mmds")
    tap(doc == want, "a refused PUT or PATCH leaves the data as it was", doc)
    expect(v, "PUT /mmds with an array: 400", "PUT", "/mmds", [1, 2], 400, "JSON object")
    expect(v, "PUT /mmds/config", "PUT", "/mmds/config", {"network_interfaces": ["eth0"]})
    cfg = {"version": "V2", "network_interfaces": ["eth0"], "ipv4_address": "169.254.170.2",
           "imds_compat": True}
    expect(v, "PUT /mmds/config V2 at another address", "PUT", "/mmds/config", cfg)
    st, doc = v.req("GET", "/vm/config")
    tap(doc.get("mmds-config") == cfg, "GET /vm/config shows mmds-config", doc.get("mmds-config"))
    for name, body, msg in [
            ("an interface that does not exist", {"network_interfaces": ["eth9"]}, "no configured"),
            ("no interface", {"network_interfaces": []}, "is empty"),
            ("version V3", {"version": "V3", "network_interfaces": ["eth0"]}, "version"),
            ("a routable address", {"network_interfaces": ["eth0"], "ipv4_address": "10.0.0.1"},
             "not link local"),
            ("an address that is none", {"network_interfaces": ["eth0"], "ipv4_address": "1.2.3"},
             "not an IPv4"),
            ("no network_interfaces", {"version": "V1"}, "network_interfaces"),
            ("an unknown field", {"network_interfaces": ["eth0"], "x": 1}, "unknown field")]:
        expect(v, "mmds-config with %s: 400" % name, "PUT", "/mmds/config", body, 400, msg)
    st, doc = v.req("GET", "/vm/config")
    tap(doc.get("mmds-config") == cfg, "a refused mmds-config keeps the last one", doc.get("mmds-config"))


def preboot_state(v):
    expect(v, "PATCH /vm before boot: 400", "PATCH", "/vm", {"state": "Paused"}, 400, "not running")
    expect(v, "PATCH /vm bad state: 400", "PATCH", "/vm", {"state": "Asleep"}, 400, "unknown state")
    expect(v, "SendCtrlAltDel before boot: 400", "PUT", "/actions",
           {"action_type": "SendCtrlAltDel"}, 400, "not running")
    expect(v, "unknown action: 400", "PUT", "/actions", {"action_type": "Explode"}, 400, "unknown action")
    expect(v, "action without action_type: 400", "PUT", "/actions", {"type": "x"}, 400, "action_type")
    expect(v, "snapshot/create before boot: 400", "PUT", "/snapshot/create", {"snapshot_path": "x"}, 400,
           "not running")
    expect(v, "snapshot/create with a string body: 400", "PUT", "/snapshot/create", "x", 400,
           "expected a JSON object")
    preboot_clones(v)
    st, doc = v.req("GET", "/metrics")
    tap(st == 200 and 'banyan_vm_state{state="not_started"} 1' in doc, "GET /metrics before boot", doc)
    st, doc = v.req("GET", "/banyan/v1/status")
    tap(st == 200 and doc.get("state") == "Not started", "GET /banyan/v1/status", doc)


def preboot_clones(v):
    prefix = os.path.join(TMP, "clone")
    body = {"snapshot_path": os.path.join(TMP, "snap"), "count": 2, "console_prefix": prefix}
    bad = [
        ("take_snapshot before boot", dict(body, take_snapshot=True), "not running"),
        ("count 0", dict(body, count=0), "between 1 and 1024"),
        ("count 1025", dict(body, count=1025), "between 1 and 1024"),
        ("count as a string", dict(body, count="2"), "between 1 and 1024"),
        ("no console_prefix", {"snapshot_path": body["snapshot_path"], "count": 2},
         "missing required field 'console_prefix'"),
        ("relative console_prefix", dict(body, console_prefix="clone"), "must be an absolute path"),
        ("relative snapshot_path", dict(body, snapshot_path="snap"), "must be an absolute path"),
        ("api_socket_prefix too long for a socket", dict(body, api_socket_prefix="/" + "s" * 120),
         "'api_socket_prefix' must be an absolute path"),
        ("take_snapshot not a boolean", dict(body, take_snapshot="yes"), "must be a boolean"),
        ("unknown field", dict(body, colour=1), "unknown field 'colour'"),
        ("a directory that is no snapshot", dict(body, snapshot_path=TMP), "not a snapshot"),
    ]
    for name, b, msg in bad:
        expect(v, "PUT /banyan/v1/clones, %s: 400" % name, "PUT", "/banyan/v1/clones", b, 400, msg)
    tap(not os.path.exists(prefix + ".log") and not os.path.exists(prefix + ".0"),
        "refused clone requests started nothing", os.listdir(TMP))


def concurrent_clients(v, name):
    results = []

    def worker():
        for _ in range(10):
            try:
                results.append(v.req("GET", "/machine-config", timeout=20)[0])
            except Exception as e:  # noqa: BLE001
                results.append(repr(e))
    threads = [threading.Thread(target=worker) for _ in range(20)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tap(results.count(200) == 200, "%s: 20 concurrent clients x 10 requests all answered" % name,
        "%d answered, %.1f s, %r" % (results.count(200), time.time() - t0,
                                     [r for r in results if r != 200][:3]))


def slow_clients(v, name):
    # Half a request that never completes, and one that hangs up mid-body.
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(v.sock)
    slow.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{\"vcpu")
    quitter = socket.socket(socket.AF_UNIX)
    quitter.connect(v.sock)
    quitter.sendall(b"PUT /boot-source HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    quitter.close()
    t0 = time.time()
    st, _ = v.req("GET", "/", timeout=5)
    tap(st == 200 and time.time() - t0 < 2, "%s: a slow client does not hold up others" % name,
        "HTTP %d after %.1f s" % (st, time.time() - t0))
    slow.close()


def part_preboot():
    kernel = os.path.join(GUESTS, "hello.elf")
    v = Vmm("pre")
    st, doc = v.req("GET", "/")
    tap(st == 200 and doc.get("state") == "Not started" and doc.get("app_name") == "banyan",
        "GET / before boot", doc)
    st, doc = v.req("GET", "/machine-config")
    tap(doc == {"vcpu_count": 1, "mem_size_mib": 256, "smt": False, "track_dirty_pages": False,
                "huge_pages": "None"}, "machine-config defaults", doc)
    preboot_config(v)
    preboot_malformed(v)
    preboot_state(v)
    preboot_devices(v, kernel)
    preboot_mmds(v)
    concurrent_clients(v, "before boot")
    slow_clients(v, "before boot")
    rc, out, err = ctl(v.sock, "status")
    tap(rc == 0 and "Not started" in out, "banyan ctl status (text)", out + err)
    rc, out, err = ctl(v.sock, "--json", "status")
    tap(rc == 0 and json.loads(out).get("state") == "Not started", "banyan ctl --json status", out + err)
    rc, out, err = ctl(v.sock, "pause")
    tap(rc == 1 and "not running" in err, "banyan ctl pause before boot: exit 1 with the reason",
        "%d %s" % (rc, err))
    rc, out, err = ctl(v.sock, "config")
    tap(rc == 0 and json.loads(out)["machine-config"]["vcpu_count"] == 3, "banyan ctl config", out + err)
    rc, out, err = ctl(v.sock, "metrics")
    tap(rc == 0 and "banyan_vm_state" in out, "banyan ctl metrics", out + err)
    rc, _, err = ctl(v.sock, "frobnicate")
    tap(rc == 2, "banyan ctl unknown command: exit 2", err)
    rc, _, err = ctl(os.path.join(TMP, "nobody.sock"), "status")
    tap(rc == 3, "banyan ctl without a VMM: exit 3", err)
    second = Vmm("pre2", wait_socket=False, sock=v.sock)
    rc = second.wait(20)
    tap(rc == 2 and "another process serves" in second.stderr(),
        "a second VMM on a live socket: exit 2", "%s %s" % (rc, second.stderr()))
    rc, _, err = ctl(v.sock, "stop")
    tap(rc == 0, "banyan ctl stop before boot", err)
    rc = v.wait(20)
    tap(rc == 0 and not os.path.exists(v.sock), "stop before boot: exit 0, socket removed",
        "%s %s" % (rc, v.stderr()))

    v = Vmm("missing")
    gone = os.path.join(TMP, "no-such-kernel")
    open(gone, "wb").close()
    expect(v, "PUT /boot-source (a kernel that then goes)", "PUT", "/boot-source",
           {"kernel_image_path": gone})
    os.unlink(gone)
    expect(v, "InstanceStart with a missing kernel: 400", "PUT", "/actions",
           {"action_type": "InstanceStart"}, 400, "no-such-kernel")
    expect(v, "InstanceStart without boot-source (fresh VMM): 400", "PUT", "/actions",
           {"action_type": "InstanceStart"}, 400, "no-such-kernel")
    v.proc.send_signal(signal.SIGTERM)
    rc = v.wait(20)
    tap(rc == 143, "SIGTERM while waiting for InstanceStart: exit 143", rc)

    v = Vmm("nokernel")
    expect(v, "InstanceStart without a kernel: 400", "PUT", "/actions",
           {"action_type": "InstanceStart"}, 400, "configure /boot-source")
    v.kill()

    cfgf = os.path.join(TMP, "bad.json")
    for name, doc, msg in [
            ("unknown section", {"boot-source": {"kernel_image_path": kernel}, "gpu": {}}, "unknown field 'gpu'"),
            ("no boot-source", {"machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}, "boot-source"),
            ("bad machine-config", {"boot-source": {"kernel_image_path": kernel},
                                    "machine-config": {"vcpu_count": 0, "mem_size_mib": 64}}, "vcpu_count")]:
        with open(cfgf, "w") as f:
            json.dump(doc, f)
        p = subprocess.run([BANYAN, "run", "--config", cfgf], capture_output=True, text=True, timeout=30)
        tap(p.returncode == 2 and msg in p.stderr, "--config with %s: exit 2, says why" % name,
            "%d %s" % (p.returncode, p.stderr))
    p = subprocess.run([BANYAN, "run", "--config", cfgf, "--cpus", "2"], capture_output=True,
                       text=True, timeout=30)
    tap(p.returncode == 2 and "--cpus cannot be combined with --config" in p.stderr,
        "--config with --cpus: exit 2", p.stderr)


# Hostile input: files that are not what they claim, slow clients, leaks,
# bytes that are not UTF-8, a guest larger than the host.

def run_cli(*args, timeout=15):
    """banyan run ARGS: (status, stderr); status "timeout" if it hung."""
    try:
        p = subprocess.run([BANYAN, "run"] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "timeout", ""
    return p.returncode, p.stderr


def block_device():
    for name in sorted(os.listdir("/dev")):
        path = os.path.join("/dev", name)
        try:
            if stat.S_ISBLK(os.stat(path).st_mode):
                return path
        except OSError:
            pass
    return None


def hostile_fifo_config(v, fifo):
    cases = [
        ("a FIFO kernel", "/boot-source", {"kernel_image_path": fifo}, "not a regular file"),
        ("a FIFO initrd", "/boot-source", {"kernel_image_path": os.path.join(GUESTS, "hello.elf"),
                                    "initrd_path": fifo}, "not a regular file"),
        ("a FIFO drive", "/drives/f", {"drive_id": "f", "path_on_host": fifo, "is_root_device": False},
         "not a regular file or block device"),
        ("a character device drive", "/drives/f", {"drive_id": "f", "path_on_host": "/dev/null",
                                                 "is_root_device": False},
         "not a regular file or block device"),
        ("a directory as kernel", "/boot-source", {"kernel_image_path": TMP}, "not a regular file"),
    ]
    for name, path, body, msg in cases:
        st, doc, secs = timed(v, "PUT", path, body)
        tap(st == 400 and msg in fault(doc), "%s that is not a regular file: 400 at PUT" % name,
            "HTTP %s %r after %.1f s" % (st, doc, secs))
    dev = block_device()
    if dev:
        st, doc, _ = timed(v, "PUT", "/drives/blk", {"drive_id": "blk", "path_on_host": dev,
                                                       "is_root_device": False, "is_read_only": True})
        tap(st == 204, "a block device is a legitimate drive (%s): 204" % dev, "HTTP %s %r" % (st, doc))
        regular = os.path.join(TMP, "regular.img")
        with open(regular, "wb") as f:
            f.truncate(1 << 20)
        v.req("PUT", "/drives/blk", {"drive_id": "blk", "path_on_host": regular, "is_root_device": False})
    else:
        tap(True, "a block device is a legitimate drive # SKIP no block device in /dev")


def hostile_fifo_swap(v):
    """A regular file at PUT time, a FIFO by InstanceStart: the open itself must not block."""
    kernel = os.path.join(TMP, "swap-kernel")
    disk = os.path.join(TMP, "swap-disk")
    for path in (kernel, disk):
        with open(path, "wb") as f:
            f.write(b"\0" * 4096)
    expect(v, "swap: PUT /boot-source (a regular file)", "PUT", "/boot-source",
           {"kernel_image_path": kernel})
    os.unlink(kernel)
    os.mkfifo(kernel)
    st, doc, secs = timed(v, "PUT", "/actions", {"action_type": "InstanceStart"})
    tap(st == 400 and "not a regular file" in fault(doc),
        "kernel swapped for a FIFO: InstanceStart answers 400 at once", "HTTP %s %r after %.1f s" % (st, doc, secs))
    st, _, secs = timed(v, "GET", "/", timeout=3)
    tap(st == 200, "kernel swapped for a FIFO: the API still answers", "HTTP %s after %.1f s" % (st, secs))
    expect(v, "swap: PUT /boot-source (a real kernel)", "PUT", "/boot-source",
           {"kernel_image_path": os.path.join(GUESTS, "hello.elf")})
    expect(v, "swap: PUT /drives/swap (a regular file)", "PUT", "/drives/swap",
           {"drive_id": "swap", "path_on_host": disk, "is_root_device": False, "is_read_only": True})
    os.unlink(disk)
    os.mkfifo(disk)
    st, doc, secs = timed(v, "PUT", "/actions", {"action_type": "InstanceStart"})
    tap(st == 400 and "not a regular file or block device" in fault(doc),
        "drive swapped for a FIFO: InstanceStart answers 400 at once", "HTTP %s %r after %.1f s" % (st, doc, secs))


def fifo_read(path, secs=2):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    data = b""
    end = time.time() + secs
    try:
        while time.time() < end:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                chunk = None
            if chunk:
                data += chunk
            else:
                time.sleep(0.05)
    finally:
        os.close(fd)
    return data


def hostile_fifo_sinks(v):
    """Log and metrics FIFOs are legitimate: opened so that nothing ever blocks."""
    logfifo = os.path.join(TMP, "log.fifo")
    metfifo = os.path.join(TMP, "metrics.fifo")
    os.mkfifo(logfifo)
    os.mkfifo(metfifo)
    st, doc, secs = timed(v, "PUT", "/logger", {"log_path": logfifo, "level": "Debug"})
    tap(st == 204, "PUT /logger on a FIFO nobody reads: 204 at once", "HTTP %s %r after %.1f s" % (st, doc, secs))
    # Fill the FIFO (64 KiB) and the log's queue (256 KiB) with long debug
    # lines: writes must never block.
    long_url = "/" + "x" * 900
    for _ in range(600):
        timed(v, "GET", long_url, timeout=3)
    st, _, secs = timed(v, "GET", "/", timeout=3)
    tap(st == 200 and secs < 2, "a full log FIFO blocks nobody", "HTTP %s after %.1f s" % (st, secs))
    st, text, _ = timed(v, "GET", "/metrics")
    dropped = [l for l in str(text).splitlines() if l.startswith("banyan_log_lines_dropped_total ")]
    tap(dropped and int(dropped[0].split()[1]) > 0, "lines dropped on a full log FIFO are counted",
        dropped or str(text)[-400:])
    data = fifo_read(logfifo, 1)
    tap(b"api: GET /xxx" in data, "the log FIFO's reader gets the lines that fitted", data[-200:])
    st, doc, secs = timed(v, "PUT", "/metrics", {"metrics_path": metfifo})
    tap(st == 204, "PUT /metrics on a FIFO nobody reads: 204 at once", "HTTP %s %r after %.1f s" % (st, doc, secs))
    st, doc, secs = timed(v, "PUT", "/actions", {"action_type": "FlushMetrics"})
    tap(st == 204, "FlushMetrics into a FIFO nobody reads yet: 204", "HTTP %s %r after %.1f s" % (st, doc, secs))
    data = fifo_read(metfifo, 1)
    tap(b'"utc_timestamp_ms"' in data and data.endswith(b"\n"),
        "the metrics FIFO's reader gets the flush", data[-200:])
    timed(v, "PUT", "/logger", {"log_path": os.path.join(TMP, "after-fifo.log"), "level": "Info"})


def hostile_fifo_snapshot(v):
    """A snapshot directory whose manifest is a FIFO: loading or cloning it must not block."""
    snap = os.path.join(TMP, "fifo-snap")
    os.mkdir(snap)
    os.mkfifo(os.path.join(snap, "manifest.json"))
    st, doc, secs = timed(v, "PUT", "/banyan/v1/clones",
                          {"snapshot_path": snap, "count": 1, "console_prefix": os.path.join(TMP, "fc")})
    tap(st == 400 and "not a regular file" in fault(doc), "clones of a snapshot with a FIFO manifest: 400 at once",
        "HTTP %s %r after %.1f s" % (st, doc, secs))
    st, doc, secs = timed(v, "PUT", "/snapshot/load", {"snapshot_path": snap})
    tap(st == 400 and "not a regular file" in fault(doc), "loading a snapshot with a FIFO manifest: 400 at once",
        "HTTP %s %r after %.1f s" % (st, doc, secs))


def hostile_fifos():
    fifo = os.path.join(TMP, "input.fifo")
    os.mkfifo(fifo)
    v = Vmm("fifo")
    hostile_fifo_config(v, fifo)
    hostile_fifo_swap(v)
    hostile_fifo_sinks(v)
    hostile_fifo_snapshot(v)
    v.proc.send_signal(signal.SIGTERM)
    rc = v.wait(10)
    tap(rc == 143, "after the FIFOs, SIGTERM: exit 143", rc)
    hello = os.path.join(GUESTS, "hello.elf")
    cfg = os.path.join(TMP, "fifo-config.json")
    with open(cfg, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": hello},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 64},
                   "drives": [{"drive_id": "f", "path_on_host": fifo, "is_root_device": False}]}, f)
    for name, args, msg in [
            ("--config FIFO", ["--config", fifo], "not a regular file"),
            ("--kernel FIFO", ["--kernel", fifo], "not a regular file"),
            ("--initrd FIFO", ["--kernel", hello, "--initrd", fifo], "not a regular file"),
            ("--disk FIFO,ro", ["--kernel", hello, "--disk", "path=%s,ro" % fifo],
             "not a regular file or block device"),
            ("--disk /dev/null", ["--kernel", hello, "--disk", "path=/dev/null"],
             "not a regular file or block device"),
            ("--config with a FIFO drive", ["--config", cfg], "not a regular file or block device"),
            ("--log-file FIFO (then a missing kernel)",
             ["--log-file", fifo, "--kernel", os.path.join(TMP, "no-kernel")], None)]:
        rc, err = run_cli(*args)
        tap(rc == 2 and (msg is None or msg in err), "%s: exit 2 at once, says why" % name,
            "%s %s" % (rc, err))


def hostile_full_backlog():
    """A socket file whose listener never accepts: claiming the path must not hang."""
    path = os.path.join(TMP, "stuck.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(0)
    clients = []
    for _ in range(4):
        c = socket.socket(socket.AF_UNIX)
        c.setblocking(False)
        try:
            c.connect(path)
        except BlockingIOError:
            pass
        clients.append(c)
    try:
        v = Vmm("stuck", wait_socket=False, sock=path)
        rc = v.wait(10)
        tap(rc == 2 and "another process serves" in v.stderr(),
            "an API socket whose listener never accepts: exit 2 at once", "%s %s" % (rc, v.stderr()))
    finally:
        for c in clients:
            c.close()
        listener.close()


def hostile_slowloris():
    v = Vmm("slowloris")
    socks = []
    for _ in range(64):
        s = socket.socket(socket.AF_UNIX)
        s.connect(v.sock)
        s.sendall(b"PUT /machine-config HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    stop = threading.Event()

    def trickle():
        while not stop.is_set():
            for s in socks:
                try:
                    s.sendall(b"X")
                except OSError:
                    pass
            time.sleep(0.3)
    t = threading.Thread(target=trickle)
    t.start()
    try:
        time.sleep(0.5)
        st, doc, secs = timed(v, "GET", "/", timeout=5)
        tap(st == 200 and secs < 2, "64 trickling clients: a new client is served within 2 s",
            "HTTP %s %r after %.1f s" % (st, doc, secs))
        st, doc, secs = timed(v, "PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64}, timeout=5)
        tap(st == 204 and secs < 2, "64 trickling clients: a PUT is served too", "HTTP %s after %.1f s" % (st, secs))
        # Each trickler had a bounded time to send its request: all are gone soon.
        end = time.time() + 10
        closed = 0
        for s in socks:
            s.settimeout(max(0.1, end - time.time()))
            try:
                closed += s.recv(4096) is not None
            except OSError:
                pass
        tap(closed == 64, "every trickling client was disconnected within 10 s", "%d of 64" % closed)
    finally:
        stop.set()
        t.join()
        for s in socks:
            s.close()
    v.kill()


def hostile_logger_fds():
    v = Vmm("fds")
    logs = [os.path.join(TMP, "fds-a.log"), os.path.join(TMP, "fds-b.log")]
    v.req("PUT", "/logger", {"log_path": logs[0], "level": "Debug"})
    time.sleep(0.2)
    n0 = fd_count(v.proc.pid)
    for i in range(60):
        v.req("PUT", "/logger", {"log_path": logs[i % 2], "level": "Debug"})
    time.sleep(0.2)
    n1 = fd_count(v.proc.pid)
    tap(n1 - n0 < 3, "60 PUT /logger: the open descriptors stay flat", "%d -> %d" % (n0, n1))
    v.req("GET", "/no-such-path-after-switching")
    # Log lines reach the file through the log's writer thread: wait for it.
    found = False
    for _ in range(50):
        found = "no-such-path-after-switching" in open(logs[1]).read()
        if found:
            break
        time.sleep(0.1)
    tap(found, "the log goes to the last log_path")
    v.kill()


def check_utf8(v, name, data):
    st, body = raw_request(v.sock, data)
    doc = strict_json(body)
    tap(st == 400 and isinstance(doc, dict) and doc.get("fault_message"),
        "%s: 400 with valid UTF-8 JSON" % name, "HTTP %s %r" % (st, body[:300]))


def hostile_utf8():
    v = Vmm("utf8")
    get = b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    check_utf8(v, "raw invalid bytes in the path", get % b"/\xff\xfe\xc3")
    check_utf8(v, "percent-escaped invalid bytes in the path", get % b"/%ff%fe%c3")
    check_utf8(v, "a long UTF-8 path cut by the message", get % (b"/" + b"%c3%a9" * 150))
    put = b"PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
    for name, url, body in [
            ("an invalid UTF-8 value", b"/drives/x",
             b'{"drive_id":"x","path_on_host":"/tmp/x","is_root_device":false,"cache_type":"\xff\xfe"}'),
            ("an invalid UTF-8 key", b"/machine-config", b'{"\xff\xc3": 1}'),
            ("an invalid UTF-8 level", b"/logger", b'{"level": "\xe2\x82"}'),
            ("an invalid UTF-8 path", b"/boot-source", b'{"kernel_image_path": "/tmp/\xffk"}')]:
        check_utf8(v, name, put % (url, len(body), body))
    st, body = raw_request(v.sock, get % b"/vm/config")
    tap(st == 200 and strict_json(body) is not None, "GET /vm/config stays valid UTF-8 JSON",
        body[:300])
    v.kill()


def host_memory_mib():
    """What one allocation may take under the host's overcommit policy; None: no limit."""
    info = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, val = line.split(":")
            info[k] = int(val.split()[0])
    with open("/proc/sys/vm/overcommit_memory") as f:
        mode = int(f.read())
    if mode == 1:
        return None
    if mode == 2:
        return info["CommitLimit"] // 1024
    return (info["MemTotal"] + info.get("SwapTotal", 0)) // 1024


def hostile_memory():
    limit = host_memory_mib()
    if limit is None or limit >= (1 << 20) - 1024:
        for n in ("PUT /machine-config larger than the host: 400", "--memory larger than the host: exit 2",
                  "--config larger than the host: exit 2"):
            tap(True, n + " # SKIP the host overcommits or has 1 TiB")
        return
    v = Vmm("memory")
    expect(v, "PUT /machine-config 1 TiB on this host: 400", "PUT", "/machine-config",
           {"vcpu_count": 1, "mem_size_mib": 1 << 20}, 400, "host")
    expect(v, "PUT /machine-config just above the host: 400", "PUT", "/machine-config",
           {"vcpu_count": 1, "mem_size_mib": limit + 1024}, 400, "host")
    expect(v, "PATCH /machine-config above the host: 400", "PATCH", "/machine-config",
           {"mem_size_mib": limit + 1024}, 400, "host")
    expect(v, "PUT /machine-config within the host: 204", "PUT", "/machine-config",
           {"vcpu_count": 1, "mem_size_mib": min(limit // 2, 4096)})
    v.kill()
    rc, err = run_cli("--kernel", os.path.join(GUESTS, "hello.elf"), "--memory", "1T")
    tap(rc == 2 and "host" in err, "--memory 1T on this host: exit 2, says why", "%s %s" % (rc, err))
    cfg = os.path.join(TMP, "huge.json")
    with open(cfg, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": os.path.join(GUESTS, "hello.elf")},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 1 << 20}}, f)
    rc, err = run_cli("--config", cfg)
    tap(rc == 2 and "host" in err, "--config with 1 TiB on this host: exit 2, says why", "%s %s" % (rc, err))


def part_hostile():
    hostile_fifos()
    hostile_full_backlog()
    hostile_slowloris()
    hostile_logger_fds()
    hostile_utf8()
    hostile_memory()


def boot_counter(name, cpus=1):
    v = Vmm(name)
    v.req("PUT", "/machine-config", {"vcpu_count": cpus, "mem_size_mib": 64})
    v.req("PUT", "/boot-source", {"kernel_image_path": os.path.join(GUESTS, "counter.elf")})
    return v


def vm_state_machine(v):
    expect(v, "InstanceStart: 204", "PUT", "/actions", {"action_type": "InstanceStart"})
    st, doc = v.req("GET", "/")
    tap(doc.get("state") == "Running", "GET / says Running", doc)
    tap(wait_for(lambda: ticks(v) >= 3), "the guest runs (counter on the console)", v.stderr())
    expect(v, "a second InstanceStart: 400", "PUT", "/actions", {"action_type": "InstanceStart"}, 400,
           "already started")
    expect(v, "PUT /machine-config after boot: 400", "PUT", "/machine-config",
           {"vcpu_count": 1, "mem_size_mib": 64}, 400, "after the VM started")
    expect(v, "PUT /boot-source after boot: 400", "PUT", "/boot-source",
           {"kernel_image_path": "/x"}, 400, "after the VM started")
    expect(v, "PUT /drives after boot: 400", "PUT", "/drives/x",
           {"drive_id": "x", "path_on_host": "/x", "is_root_device": False}, 400, "after the VM started")


def vm_pause_resume(v):
    expect(v, "PATCH /vm Paused: 204", "PATCH", "/vm", {"state": "Paused"})
    st, doc = v.req("GET", "/")
    tap(doc.get("state") == "Paused", "GET / says Paused", doc)
    n0 = ticks(v)
    time.sleep(1.0)
    n1 = ticks(v)
    tap(n0 == n1, "no progress while paused", "%d -> %d" % (n0, n1))
    expect(v, "pausing twice is fine", "PATCH", "/vm", {"state": "Paused"})
    expect(v, "PATCH /vm Resumed: 204", "PATCH", "/vm", {"state": "Resumed"})
    tap(wait_for(lambda: ticks(v) > n1 + 3, 10), "progress after resume", "%d -> %d" % (n1, ticks(v)))
    ok = True
    for i in range(20):
        if v.req("PATCH", "/vm", {"state": "Paused"})[0] != 204 or \
           v.req("PATCH", "/vm", {"state": "Resumed"})[0] != 204:
            ok = False
    n2 = ticks(v)
    tap(ok and wait_for(lambda: ticks(v) > n2 + 3, 10), "20 quick pause/resume cycles, still running")
    rc, out, err = ctl(v.sock, "pause")
    tap(rc == 0 and out.strip() == "paused", "banyan ctl pause", out + err)
    rc, out, err = ctl(v.sock, "status")
    tap(rc == 0 and "Paused" in out, "banyan ctl status while paused", out)
    rc, out, err = ctl(v.sock, "resume")
    tap(rc == 0 and out.strip() == "resumed", "banyan ctl resume", out + err)


def vm_metrics(v):
    st, text = v.req("GET", "/metrics")
    ok = (st == 200 and 'banyan_vm_state{state="running"} 1' in text
          and 'banyan_vcpu_exits_total{vcpu="0",reason="io"}' in text
          and 'banyan_device_bytes_total{device="com1",direction="out"}' in text
          and "banyan_vm_boot_first_output_seconds" in text)
    tap(ok, "GET /metrics while running: state, exits, device bytes, boot time", text)
    out = 0
    for line in text.splitlines():
        if line.startswith('banyan_device_bytes_total{device="com1",direction="out"}'):
            out = int(line.split()[-1])
    tap(out >= 10 * ticks(v) // 2, "com1 output bytes counted", "%d bytes, %d ticks" % (out, ticks(v)))
    st, doc = v.req("GET", "/banyan/v1/status")
    tap(st == 200 and doc["state"] == "Running" and doc["uptime_seconds"] > 0, "status while running", doc)


def vm_block_drive():
    """A block device is a legitimate drive: the API lets a VM start with one."""
    img = os.path.join(TMP, "loop.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    try:
        p = subprocess.run(["losetup", "-f", "--show", img], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        p = subprocess.CompletedProcess([], 1, "", repr(e))
    if p.returncode != 0:
        tap(True, "InstanceStart with a block-device drive # SKIP losetup: %s" % p.stderr.strip())
        return
    dev = p.stdout.strip()
    try:
        v = boot_counter("blkdev")
        expect(v, "PUT /drives with a block device (%s)" % dev, "PUT", "/drives/blk",
               {"drive_id": "blk", "path_on_host": dev, "is_root_device": False, "is_read_only": True})
        expect(v, "InstanceStart with a block-device drive: 204", "PUT", "/actions",
               {"action_type": "InstanceStart"})
        v.req("PUT", "/banyan/v1/stop")
        v.wait(20)
    finally:
        subprocess.run(["losetup", "-d", dev], capture_output=True, timeout=30)


def vm_patch_limits(v, disk):
    """PATCH after boot changes a running drive's rate limiter (Firecracker's post-boot action)."""
    new = {"bandwidth": {"size": 4096, "one_time_burst": 0, "refill_time": 10}}
    expect(v, "PATCH /drives rate_limiter after boot: 204", "PATCH", "/drives/data",
           {"drive_id": "data", "rate_limiter": new})
    st, conf = v.req("GET", "/vm/config")
    tap(st == 200 and conf["drives"][0]["rate_limiter"] == dict(
        new, ops={"size": 10, "one_time_burst": 0, "refill_time": 1000}),
        "GET /vm/config shows the patched bandwidth and the ops bucket kept", conf["drives"])
    expect(v, "PATCH with a bad bucket after boot: 400", "PATCH", "/drives/data",
           {"drive_id": "data", "rate_limiter": {"ops": {"size": 1, "refill_time": 0}}}, 400, "refill_time")
    expect(v, "PATCH a running drive to a missing file: 400", "PATCH", "/drives/data",
           {"drive_id": "data", "path_on_host": disk + ".other"}, 400, "data")
    expect(v, "PATCH an unknown drive after boot: 400", "PATCH", "/drives/nope",
           {"drive_id": "nope", "rate_limiter": new}, 400, "no drive")
    expect(v, "PATCH an unknown interface after boot: 400", "PATCH", "/network-interfaces/eth7",
           {"iface_id": "eth7", "rx_rate_limiter": {}}, 400, "no interface")
    expect(v, "PATCH /drives rate_limiter null (unchanged): 204", "PATCH", "/drives/data",
           {"drive_id": "data", "rate_limiter": None})
    st, text = v.req("GET", "/metrics")
    tap(st == 200 and 'banyan_device_throttled_total{device="vda",direction="in"} 0' in text
        and 'banyan_device_throttled_seconds_total{device="vda",direction="out"}' in text,
        "GET /metrics has the disk's throttle counters", text)


def part_vm():
    vm_block_drive()
    v = boot_counter("vm", cpus=2)
    disk = os.path.join(TMP, "vm-data.img")
    with open(disk, "wb") as f:
        f.truncate(1 << 20)
    expect(v, "PUT /drives/data with a rate limiter", "PUT", "/drives/data",
           {"drive_id": "data", "path_on_host": disk, "is_root_device": False,
            "rate_limiter": {"ops": {"size": 10, "refill_time": 1000}}})
    vm_state_machine(v)
    vm_patch_limits(v, disk)
    vm_pause_resume(v)
    vm_metrics(v)
    expect(v, "PUT /mmds/config after boot: 400", "PUT", "/mmds/config",
           {"network_interfaces": []}, 400, "after the VM started")
    expect(v, "PUT /mmds after boot", "PUT", "/mmds", {"late": "yes"})
    st, doc = v.req("GET", "/mmds")
    tap(doc == {"late": "yes"}, "GET /mmds after boot", doc)
    concurrent_clients(v, "while running")
    slow_clients(v, "while running")
    expect(v, "SendCtrlAltDel: 204", "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    # This guest never reads its keyboard: the keys queue up, then a clear refusal.
    v.req("PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    expect(v, "SendCtrlAltDel to a guest that reads no keys: 400", "PUT", "/actions",
           {"action_type": "SendCtrlAltDel"}, 400, "has not read")
    st, conf = v.req("GET", "/vm/config")
    tap(st == 200 and conf["machine-config"]["vcpu_count"] == 2, "GET /vm/config while running", conf)
    cfgf = os.path.join(TMP, "vm.json")
    with open(cfgf, "w") as f:
        json.dump(conf, f)
    rc, out, err = ctl(v.sock, "stop")
    tap(rc == 0 and out.strip() == "stopped", "banyan ctl stop", out + err)
    rc = v.wait(20)
    tap(rc == 0 and "stopped through the API" in v.stderr(), "stop: exit 0 as on power-off",
        "%s %s" % (rc, v.stderr()))

    v2 = Vmm("again", "--config", cfgf)
    tap(wait_for(lambda: ticks(v2) >= 2), "--config from GET /vm/config boots", v2.stderr())
    st, conf2 = v2.req("GET", "/vm/config")
    tap(conf2 == conf, "the second VM's /vm/config equals the first's", "%r\n%r" % (conf, conf2))
    st, doc = v2.req("GET", "/")
    tap(doc.get("state") == "Running", "a --config VM is Running at once", doc)
    expect(v2, "InstanceStart on a --config VM: 400", "PUT", "/actions", {"action_type": "InstanceStart"},
           400, "already started")
    v2.req("PUT", "/banyan/v1/stop")
    tap(v2.wait(20) == 0, "stop the --config VM: exit 0")

    hello = os.path.join(TMP, "hello.json")
    with open(hello, "w") as f:
        json.dump({"boot-source": {"kernel_image_path": os.path.join(GUESTS, "hello.elf")},
                   "machine-config": {"vcpu_count": 1, "mem_size_mib": 64}}, f)
    p = subprocess.run([BANYAN, "run", "--config", hello], capture_output=True, text=True, timeout=60)
    tap(p.returncode == 0 and "hello from a banyan test guest" in p.stdout,
        "run --config (no API): hello powers off, exit 0", p.stderr)

    v3 = Vmm("bad-start")
    v3.req("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 64})
    notk = os.path.join(TMP, "not-a-kernel")
    with open(notk, "w") as f:
        f.write("this is not a kernel\n")
    v3.req("PUT", "/boot-source", {"kernel_image_path": notk})
    expect(v3, "InstanceStart with a file that is not a kernel: 400 with the loader's reason",
           "PUT", "/actions", {"action_type": "InstanceStart"}, 400, "not a kernel")
    v3.req("PUT", "/boot-source", {"kernel_image_path": os.path.join(GUESTS, "hello.elf")})
    expect(v3, "InstanceStart after fixing boot-source: 204", "PUT", "/actions",
           {"action_type": "InstanceStart"})
    tap(v3.wait(20) == 0 and "hello from a banyan test guest" in v3.output(),
        "the retried VM ran and powered off")
    vm_cli_config()


def vm_cli_config():
    """GET /vm/config of a VM started by options is exactly what the options asked for."""
    counter = os.path.join(GUESTS, "counter.elf")
    d1, d2 = os.path.join(TMP, "d1.img"), os.path.join(TMP, "d2.img")
    for d in (d1, d2):
        with open(d, "wb") as f:
            f.truncate(1 << 20)
    vs = os.path.join(TMP, "cli-v.sock")
    v = Vmm("cli", "--kernel", counter, "--cpus", "2", "--memory", "64",
            "--disk", d1 + ",ro", "--disk", "path=%s,id=data,cache=none,bw=10M/100ms,bw_burst=1M" % d2,
            "--rng=ops=10/1s",
            "--on-reboot", "restart", "--vsock", "cid=9,socket=" + vs)
    tap(wait_for(lambda: ticks(v) >= 2), "a VM started by options runs", v.stderr())
    st, conf = v.req("GET", "/vm/config")
    drive = {"partuuid": None, "is_root_device": False, "rate_limiter": None, "io_engine": "Sync",
             "socket": None}
    want = {
        "balloon": None, "cpu-config": None, "logger": None, "metrics": None, "mmds-config": None,
        "pmem": [], "memory-hotplug": None,
        "boot-source": {"kernel_image_path": counter, "initrd_path": None, "boot_args": None},
        "machine-config": {"vcpu_count": 2, "mem_size_mib": 64, "smt": False,
                           "track_dirty_pages": False, "huge_pages": "None", "on_reboot": "Restart"},
        "drives": [dict(drive, drive_id="banyan-vda", path_on_host=d1, is_read_only=True,
                        cache_type="Writeback"),
                   dict(drive, drive_id="data", path_on_host=d2, is_read_only=False,
                        cache_type="Direct", rate_limiter={
                            "bandwidth": {"size": 10 << 20, "one_time_burst": 1 << 20, "refill_time": 100},
                            "ops": None})],
        "network-interfaces": [],
        "vsock": {"guest_cid": 9, "uds_path": vs},
        "entropy": {"rate_limiter": {"bandwidth": None,
                                     "ops": {"size": 10, "one_time_burst": 0, "refill_time": 1000}}},
    }
    tap(st == 200 and conf == want, "GET /vm/config of a CLI-started VM is what the options said",
        "%r\n%r" % (conf, want))
    v.req("PUT", "/banyan/v1/stop")
    tap(v.wait(20) == 0, "stop the CLI-started VM: exit 0")
    cfgf = os.path.join(TMP, "cli.json")
    with open(cfgf, "w") as f:
        json.dump(conf, f)
    v2 = Vmm("cli-again", "--config", cfgf)
    tap(wait_for(lambda: ticks(v2) >= 2), "its document boots with --config", v2.stderr())
    st, conf2 = v2.req("GET", "/vm/config")
    tap(conf2 == conf, "... as the same machine", "%r\n%r" % (conf, conf2))
    v2.req("PUT", "/banyan/v1/stop")
    tap(v2.wait(20) == 0, "stop the --config VM: exit 0")


def main():
    try:
        if PART == "preboot":
            part_preboot()
            part_hostile()
        elif PART == "hostile":
            part_hostile()
        else:
            part_vm()
    finally:
        for v in VMMS:
            v.kill()
        remove_taps()
        subprocess.run(["rm", "-rf", TMP])
    finish()


if __name__ == "__main__":
    main()
