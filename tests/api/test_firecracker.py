#!/usr/bin/env python3
"""Client conformance: Banyan launched and driven as Firecracker's clients do.

The Go SDK (firecracker-go-sdk) and Kata Containers' firecracker driver are
replayed here: their command lines, their version check, their readiness
polling and their request bodies, recorded below exactly as those clients
serialise them, against a real `firecracker` (the link to banyan) on the
tiny test guests. TAP on stdout; standard library only.

Usage: test_firecracker.py FIRECRACKER GUEST_DIR
"""
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

from apilib import UnixHTTPConnection, finish, skip, tap

FC, GUESTS = sys.argv[1], sys.argv[2]
TMP = tempfile.mkdtemp(prefix="banyan-fc-", dir="/run" if os.access("/run", os.W_OK) else None)
PROCS = []
TAPS = []


class Fc:
    """One process started as `firecracker ARGS`, console output in a file."""

    def __init__(self, name, args):
        self.name = name
        self.out = os.path.join(TMP, name + ".out")
        self.err = os.path.join(TMP, name + ".err")
        self.proc = subprocess.Popen([FC] + args, stdin=subprocess.DEVNULL,
                                     stdout=open(self.out, "wb"), stderr=open(self.err, "wb"))
        PROCS.append(self)
        self.sock = args[args.index("--api-sock") + 1] if "--api-sock" in args else None

    def req(self, method, path, body=None, raw=None):
        """One request as the clients send it: compact JSON, Content-Type json."""
        c = UnixHTTPConnection(self.sock)
        data = raw if raw is not None else (
            json.dumps(body, separators=(",", ":")) if body is not None else None)
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        c.request(method, path, body=data, headers=headers)
        r = c.getresponse()
        text = r.read().decode()
        hdrs = dict((k.lower(), v) for k, v in r.getheaders())
        c.close()
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = text
        return r.status, doc, hdrs

    def ticks(self):
        with open(self.out, "rb") as f:
            return f.read().decode(errors="replace").count("tick ")

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


def wait_for(pred, secs=30):
    end = time.time() + secs
    while time.time() < end:
        try:
            if pred():
                return True
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.01)
    return False


def check(fc, name, method, path, body=None, status=204, contains=None):
    try:
        st, doc, hdrs = fc.req(method, path, body)
    except Exception as e:  # noqa: BLE001 - any failure is a test result
        tap(False, name, repr(e))
        return None, {}
    ok = st == status and (contains is None or contains in json.dumps(doc))
    tap(ok, name, "HTTP %d %r (wanted %d%s)\n%s" % (st, doc, status,
                                                   " with %r" % contains if contains else "",
                                                   fc.stderr()[-1500:]))
    return doc, hdrs


def make_tap(name):
    r = subprocess.run(["ip", "tuntap", "add", "dev", name, "mode", "tap"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode == 0 or os.path.exists("/sys/class/net/" + name):
        TAPS.append(name)
        return True
    return False


def seccomp_flag_known():
    """--no-seccomp maps to banyan run's --seccomp off, which may not exist yet."""
    banyan = os.path.join(os.path.dirname(FC), "banyan")
    out = subprocess.run([banyan, "run", "--help"], capture_output=True, text=True).stdout
    return "--seccomp" in out


# --- the version check (Kata: first line, second field, semver >= 0.21.1) ---

def kata_version_check():
    p = subprocess.run([FC, "--version"], capture_output=True, text=True, timeout=10)
    lines = p.stdout.split("\n")
    fields = lines[0].split(" ")
    version = fields[1].strip().lstrip("v") if len(fields) > 1 else ""
    m = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", version)
    ok = p.returncode == 0 and m is not None and tuple(map(int, m.groups())) >= (0, 21, 1)
    tap(ok, "firecracker --version: Kata's parse gives a semver >= 0.21.1 (%s)" % version, p.stdout)
    tap("banyan" in lines[0], "... and names Banyan on the same line", lines[0])
    p = subprocess.run([FC, "--help"], capture_output=True, text=True, timeout=10)
    tap(p.returncode == 0 and "--api-sock" in p.stdout, "firecracker --help", p.stdout + p.stderr)
    p = subprocess.run([FC, "--seccomp-filter", "/x.bpf", "--api-sock", "/x"],
                       capture_output=True, text=True, timeout=10)
    tap(p.returncode == 2 and "--seccomp-filter" in p.stderr,
        "--seccomp-filter: exit 2 with the reason", p.stderr)
    p = subprocess.run([FC, "--no-api"], capture_output=True, text=True, timeout=10)
    tap(p.returncode == 2 and "--config-file" in p.stderr, "--no-api without --config-file: exit 2",
        p.stderr)
    p = subprocess.run([FC, "--id", "a.b"], capture_output=True, text=True, timeout=10)
    tap(p.returncode == 2 and "--id" in p.stderr, "--id with a '.': exit 2", p.stderr)


# --- the Go SDK ---

SDK_ID = "sdk-vm-1"


def sdk_launch():
    sock = os.path.join(TMP, "sdk.sock")
    args = ["--api-sock", sock, "--id", SDK_ID]
    if seccomp_flag_known():
        args.append("--no-seccomp")
    else:
        skip("the Go SDK's --no-seccomp", "banyan run has no --seccomp option in this build")
    fc = Fc("sdk", args)
    # waitForSocket: stat the socket, then GET /machine-config until it answers
    ok = wait_for(lambda: os.path.exists(sock) and fc.req("GET", "/machine-config")[0] == 200)
    tap(ok, "Go SDK launch (%s) and readiness poll" % " ".join(args), fc.stderr())
    return fc


def sdk_configure(fc):
    kernel = os.path.join(GUESTS, "counter.elf")
    rootfs = os.path.join(TMP, "sdk-rootfs.img")
    with open(rootfs, "wb") as f:
        f.truncate(4 << 20)
    logf, metf = os.path.join(TMP, "sdk.log"), os.path.join(TMP, "sdk.metrics")
    for p in (logf, metf):
        open(p, "wb").close()
    # The SDK's bodies: swagger models, optional fields left out.
    check(fc, "SDK PUT /logger", "PUT", "/logger",
          {"level": "Debug", "log_path": logf, "show_level": True, "show_log_origin": False})
    check(fc, "SDK PUT /metrics", "PUT", "/metrics", {"metrics_path": metf})
    check(fc, "SDK PUT /machine-config", "PUT", "/machine-config",
          {"mem_size_mib": 64, "smt": False, "vcpu_count": 1})
    check(fc, "SDK PUT /boot-source", "PUT", "/boot-source",
          {"boot_args": "console=ttyS0 reboot=k panic=1 pci=off", "kernel_image_path": kernel})
    check(fc, "SDK PUT /drives/1", "PUT", "/drives/1",
          {"drive_id": "1", "is_read_only": False, "is_root_device": True, "path_on_host": rootfs})
    vs = os.path.join(TMP, "sdk-v.sock")
    doc, hdrs = check(fc, "SDK PUT /vsock (with the deprecated vsock_id)", "PUT", "/vsock",
                      {"guest_cid": 3, "uds_path": vs, "vsock_id": "vsock0"})
    tap(hdrs.get("deprecation") == "true", "... answered with a Deprecation header", hdrs)
    st, doc, _ = fc.req("GET", "/")
    tap(st == 200 and doc == {"id": SDK_ID, "state": "Not started",
                              "vmm_version": doc.get("vmm_version"), "app_name": "banyan"},
        "GET / shows the --id", doc)
    tap(re.search(r"banyan\[%s\] \w+:" % SDK_ID, fc.stderr()) is not None,
        "log lines carry the --id", fc.stderr()[-500:])
    return metf


def metrics_lines(path):
    with open(path) as f:
        return [json.loads(l) for l in f.read().splitlines() if l.strip()]


def sdk_run(fc, metf):
    check(fc, "SDK PUT /actions InstanceStart", "PUT", "/actions", {"action_type": "InstanceStart"})
    tap(wait_for(lambda: fc.ticks() >= 3), "the guest runs", fc.stderr()[-800:])
    st, doc, _ = fc.req("GET", "/")
    tap(doc.get("state") == "Running", "GET / says Running", doc)
    check(fc, "SDK PATCH /vm Paused", "PATCH", "/vm", {"state": "Paused"})
    snap, mem = os.path.join(TMP, "sdk.snap"), os.path.join(TMP, "sdk.mem")
    # CreateSnapshot(memFilePath, snapshotPath): the two paths, nothing else
    check(fc, "SDK PUT /snapshot/create", "PUT", "/snapshot/create",
          {"mem_file_path": mem, "snapshot_path": snap})
    check(fc, "SDK PATCH /vm Resumed", "PATCH", "/vm", {"state": "Resumed"})
    n = fc.ticks()
    tap(wait_for(lambda: fc.ticks() > n + 2), "the guest runs on after the snapshot")
    check(fc, "SDK PUT /actions FlushMetrics", "PUT", "/actions", {"action_type": "FlushMetrics"})
    try:
        lines = metrics_lines(metf)
    except ValueError as e:
        lines = []
        tap(False, "metrics lines are JSON", repr(e))
    last = lines[-1] if lines else {}
    ok = (len(lines) >= 1 and all("utc_timestamp_ms" in l for l in lines)
          and last.get("vcpu", {}).get("kvm_exits", 0) > 0
          and last.get("uart", {}).get("write_count", 0) > 0
          and last.get("latencies_us", {}).get("full_create_snapshot", 0) > 0
          and "block_1" in last and "pause_vm" in last.get("latencies_us", {}))
    tap(ok, "metrics: one JSON object per line, Firecracker's groups, real counters", lines[-1:])
    fc.proc.send_signal(signal.SIGTERM)
    rc = fc.wait(20)
    tap(rc == 128 + signal.SIGTERM, "SIGTERM ends the VMM (exit 143)", rc)
    lines = metrics_lines(metf)
    tap(len(lines) >= 2, "a last metrics line at exit", lines[-1:])
    return snap, mem


def sdk_load(snap, mem):
    sock = os.path.join(TMP, "sdk2.sock")
    fc = Fc("sdk2", ["--api-sock", sock, "--id", SDK_ID + "-restored"])
    tap(wait_for(lambda: os.path.exists(sock) and fc.req("GET", "/machine-config")[0] == 200),
        "a second VMM for the snapshot", fc.stderr())
    # WithSnapshot(memPath, snapPath): mem_backend, as the SDK sends it since 1.x
    check(fc, "SDK PUT /snapshot/load", "PUT", "/snapshot/load",
          {"enable_diff_snapshots": False,
           "mem_backend": {"backend_path": mem, "backend_type": "File"},
           "resume_vm": True, "snapshot_path": snap})
    n = fc.ticks()
    tap(wait_for(lambda: fc.ticks() > n + 2), "the restored guest runs", fc.stderr()[-800:])
    fc.proc.send_signal(signal.SIGTERM)
    tap(fc.wait(20) == 128 + signal.SIGTERM, "SIGTERM ends the restored VMM")


# --- Kata Containers ---

def kata_config(kernel, taps):
    root = os.path.join(TMP, "kata-root.img")
    with open(root, "wb") as f:
        f.truncate(8 << 20)
    drives = [{"drive_id": "rootfs", "path_on_host": root, "is_root_device": False,
               "is_read_only": True}]
    for i in range(8):  # Kata's pool of placeholder drives: empty files
        p = os.path.join(TMP, "kata-drive-%d" % i)
        open(p, "wb").close()
        drives.append({"drive_id": "drive_%d" % i, "path_on_host": p,
                       "is_root_device": False, "is_read_only": False})
    log_fifo, met_fifo = os.path.join(TMP, "kata-log.fifo"), os.path.join(TMP, "kata-metrics.fifo")
    os.mkfifo(log_fifo)
    os.mkfifo(met_fifo)
    cfg = {
        "boot-source": {"kernel_image_path": kernel,
                        "boot_args": "console=ttyS0 reboot=k panic=1 pci=off agent.log=debug"},
        "drives": drives,
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 64, "smt": False},
        "network-interfaces": [{"iface_id": "eth%d" % i, "host_dev_name": t,
                                "guest_mac": "02:fc:00:00:00:%02x" % (i + 1)}
                               for i, t in enumerate(taps)],
        "vsock": {"guest_cid": 3, "uds_path": os.path.join(TMP, "kata.hvsock"),
                  "vsock_id": "root"},
        "logger": {"log_path": log_fifo, "level": "Debug", "show_level": True,
                   "show_log_origin": True},
        "metrics": {"metrics_path": met_fifo},
        "balloon": None, "mmds-config": None, "cpu-config": None, "pmem": [],
    }
    path = os.path.join(TMP, "kata.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    return path, log_fifo, met_fifo, drives


def fifo_drain(path, into, stop):
    """Kata reads its log and metrics FIFOs in goroutines, from after the launch."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        while not stop.is_set():
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                chunk = None
            if chunk:
                into.append(chunk)
            else:
                time.sleep(0.05)
    finally:
        os.close(fd)


def kata(taps):
    kernel = os.path.join(GUESTS, "counter.elf")
    cfgf, log_fifo, met_fifo, drives = kata_config(kernel, taps)
    sock = os.path.join(TMP, "kata.sock")
    fc = Fc("kata", ["--api-sock", sock, "--config-file", cfgf])
    logs, mets, stop = [], [], threading.Event()
    readers = [threading.Thread(target=fifo_drain, args=(p, b, stop), daemon=True)
               for p, b in ((log_fifo, logs), (met_fifo, mets))]
    for r in readers:
        r.start()
    # waitVMMRunning: GET / until the state is Running
    ok = wait_for(lambda: fc.req("GET", "/")[1].get("state") == "Running")
    tap(ok, "Kata launch (--api-sock, --config-file: 9 drives, %d virtio devices) runs" %
        (len(drives) + len(taps) + 1), fc.stderr()[-1500:])
    tap(wait_for(lambda: fc.ticks() >= 2), "the guest runs", fc.stderr()[-800:])
    st, doc, _ = fc.req("GET", "/vm/config")
    tap(st == 200 and len(doc.get("drives", [])) == 9 and doc.get("logger", {}).get("level") == "Debug",
        "GET /vm/config: the 9 drives and the logger", doc)
    new = os.path.join(TMP, "kata-hotplug.img")
    with open(new, "wb") as f:
        f.truncate(2 << 20)
    # hotplugBlockDevice: PATCH the placeholder's path_on_host
    check(fc, "Kata block hotplug: PATCH /drives/drive_0", "PATCH", "/drives/drive_0",
          {"drive_id": "drive_0", "path_on_host": new})
    st, doc, _ = fc.req("GET", "/vm/config")
    got = [d["path_on_host"] for d in doc.get("drives", []) if d["drive_id"] == "drive_0"]
    tap(got == [new], "GET /vm/config shows the hotplugged file", got)
    check(fc, "hotplug of a missing file: 400", "PATCH", "/drives/drive_1",
          {"drive_id": "drive_1", "path_on_host": os.path.join(TMP, "nope.img")}, 400, "nope.img")
    check(fc, "PATCH an unknown drive: 400", "PATCH", "/drives/drive_9",
          {"drive_id": "drive_9", "path_on_host": new}, 400, "no drive")
    # unplug: the placeholder again
    check(fc, "Kata block unplug: PATCH back to the placeholder", "PATCH", "/drives/drive_0",
          {"drive_id": "drive_0", "path_on_host": drives[1]["path_on_host"]})
    check(fc, "FlushMetrics into Kata's FIFO", "PUT", "/actions", {"action_type": "FlushMetrics"})
    tap(wait_for(lambda: b"\n" in b"".join(mets), 5), "the metrics FIFO's reader gets a line")
    try:
        line = json.loads(b"".join(mets).split(b"\n")[0])
    except ValueError:
        line = {}
    tap("block_drive_0" in line and "net" in line if taps else "block_drive_0" in line,
        "... JSON with the block and net groups", b"".join(mets)[:400])
    fc.proc.send_signal(signal.SIGTERM)
    tap(fc.wait(20) == 128 + signal.SIGTERM, "SIGTERM ends Kata's VMM")
    stop.set()
    for r in readers:
        r.join(5)
    tap(b"debug" in b"".join(logs), "Kata's log FIFO got the Debug lines", b"".join(logs)[-300:])


def main():
    try:
        kata_version_check()
        fc = sdk_launch()
        metf = sdk_configure(fc)
        snap, mem = sdk_run(fc, metf)
        sdk_load(snap, mem)
        taps = ["bnyn-kata0"] if make_tap("bnyn-kata0") else []
        if not taps:
            skip("Kata's network interface", "cannot create a TAP here")
        kata(taps)
    finally:
        for p in PROCS:
            if p.proc.poll() is None:
                p.proc.kill()
                p.proc.wait()
        for t in TAPS:
            subprocess.run(["ip", "tuntap", "del", "dev", t, "mode", "tap"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", TMP])
    finish()


if __name__ == "__main__":
    main()
