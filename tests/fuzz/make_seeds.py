#!/usr/bin/env python3
"""Write the seed corpora of the device fuzz targets (tests/fuzz/corpus/NAME).

Each seed is a short, well-formed operation sequence in the target's input
encoding (see the comment at the top of each fuzz_*.c): valid requests,
packets, handshakes and register sequences the fuzzer mutates from. Run it
again after changing an encoding: tests/fuzz/make_seeds.py
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FT_OPS = 13
ALL = 0xFFFFFFFFFFFFFFFF


def u8(v):
    return struct.pack('<B', v & 0xFF)


def u16(v):
    return struct.pack('<H', v & 0xFFFF)


def u32(v):
    return struct.pack('<I', v & 0xFFFFFFFF)


def u64(v):
    return struct.pack('<Q', v & ALL)


# --- fake_transport.h's shared operations ---

def desc(off, length, write=False, indirect=False, data=b''):
    kind = (1 if write else 0) | (2 if indirect else 0)
    return u8(kind) + u16(off) + u8(len(data)) + u16(length) + data


def chain(q, descs, notify=True):
    return u8(0) + u8(q | (0x80 if notify else 0)) + u8(len(descs) - 1) + b''.join(descs)


def notify(q):
    return u8(2) + u8(q)


def event():
    return u8(3)


def collect(q):
    return u8(4) + u8(q)


def settle():
    return u8(11)


def config_read(off, length):
    return u8(6) + u8(off) + u8(length - 1)


def state():
    return u8(10)


def state_load(blob):
    return u8(12) + u8(len(blob)) + blob


def reset(want, qcodes):
    return u8(5) + u64(want) + bytes(qcodes)


# --- virtio-blk ---

def blk_req(typ, sector, data_len=0, data_write=True, data=b'', status_off=0x3000):
    hdr = struct.pack('<IIQ', typ, 0, sector)
    descs = [desc(0x0, 16, data=hdr)]
    if data_len:
        descs.append(desc(0x1000, data_len, write=data_write, data=data))
    descs.append(desc(status_off, 1, write=True))
    return chain(0, descs)


def blk_seeds():
    head = u8(0) + u64(ALL) + u8(6)
    seg = struct.pack('<QII', 2, 4, 0)
    seeds = {
        'read': head + blk_req(0, 1, 512) + settle() + collect(0),
        'write': head + blk_req(1, 3, 1024, False, b'\xaa' * 32) + settle() + collect(0),
        'flush': head + blk_req(4, 0) + settle() + collect(0),
        'get-id': head + blk_req(8, 0, 20) + collect(0),
        'discard': head + blk_req(11, 0, 16, False, seg) + settle() + collect(0),
        'write-zeroes': head + blk_req(13, 0, 16, False, struct.pack('<QII', 2, 4, 1))
        + settle() + collect(0),
        'beyond-end': head + blk_req(0, 127, 1024) + collect(0),
        'no-status': head + chain(0, [desc(0, 16, data=struct.pack('<IIQ', 0, 0, 0))]),
        'ro-write': u8(1) + u64(ALL) + u8(6) + blk_req(1, 0, 512, False) + collect(0),
        'overlay-rw': u8(2) + u64(ALL) + u8(6) + blk_req(1, 8, 512, False, b'\x11' * 16)
        + settle() + blk_req(0, 8, 512) + settle() + collect(0),
        'threads': u8(4) + u64(0) + u8(3) + blk_req(0, 0, 512) + blk_req(1, 1, 512, False)
        + settle() + collect(0) + state() + reset(ALL, [6]) + blk_req(8, 0, 20),
        'config': head + config_read(0, 8) + config_read(20, 4) + config_read(56, 8),
        # the device section of a snapshot: the capacity in sectors (64 KiB)
        'state-load': head + state_load(u64(128)) + blk_req(0, 1, 512) + settle() + collect(0),
    }
    # An indirect table: header, data, status (fake_transport.h: FT_DATA = 0x14000).
    data = 0x14000
    table = struct.pack('<QIHH', data + 0x2000, 16, 1, 1) + \
        struct.pack('<QIHH', data + 0x2100, 512, 3, 2) + \
        struct.pack('<QIHH', data + 0x2400, 1, 2, 0)
    seeds['indirect'] = head + u8(1) + u16(0x2000 + 0x4000) + u8(16) + \
        struct.pack('<IIQ', 0, 0, 5) + chain(0, [desc(0x800, 48, indirect=True, data=table)]) \
        + settle() + collect(0)
    return seeds


# --- virtio-net ---

def ctrl(cmd, split=False):
    """A control queue request (queue 2): class, command, data; then the ack byte."""
    if split:
        parts = [desc(0x9000, 2, data=cmd[:2]), desc(0x9100, len(cmd) - 2, data=cmd[2:])]
    else:
        parts = [desc(0x9000, len(cmd), data=cmd)]
    return chain(2, parts + [desc(0x9200, 1, write=True)])


def mac_table(uni, multi, lie=None):
    """MAC_TABLE_SET: le32 count and entries, unicast then multicast."""
    body = u32(len(uni) if lie is None else lie) + b''.join(uni)
    return b'\x01\x00' + body + u32(len(multi)) + b''.join(multi)


def net_seeds():
    # flags, features, then one setup byte per queue: receive, transmit, control
    head = u8(0) + u64(ALL) + u8(6) + u8(6) + u8(6)
    rx = b''.join(chain(0, [desc(0x1000 * i, 2048, write=True)]) for i in range(3))
    hdr = bytes(12)
    frame = hdr + bytes.fromhex('ffffffffffff525400010203') + b'\x08\x00' + b'\x45' * 40
    tx = chain(1, [desc(0x8000, len(frame), data=frame)])
    host_frame = u8(FT_OPS) + u8(0) + u16(80) + (hdr + b'\x52' * 52)
    return {
        'rx-tx': head + rx + host_frame + collect(0) + tx + u8(FT_OPS + 1) + collect(1),
        'mrg': head + chain(0, [desc(0, 64, write=True)]) + chain(0, [desc(0x100, 64, True)])
        + host_frame + collect(0),
        'split-tx': head + chain(1, [desc(0x8000, 12, data=hdr), desc(0x8100, 60, data=frame[12:])])
        + u8(FT_OPS + 1) + collect(1),
        'big-frame': head + rx + u8(FT_OPS) + u8(1) + u16(30000) + hdr + bytes(52) + collect(0),
        'link-mac': head + u8(FT_OPS + 2) + u8(0) + u8(FT_OPS + 3) + bytes(range(6))
        + config_read(0, 8) + config_read(6, 2),
        'backpressure': u8(1) + u64(0) + u8(4) + u8(4) + u8(4) + b''.join(
            chain(1, [desc(0x8000 + 0x800 * i, 1500, data=hdr)]) for i in range(8)) + collect(1)
        + u8(FT_OPS + 1) + event() + collect(1),
        'reset-state': head + rx + state() + reset(ALL, [6, 6, 6]) + host_frame + collect(0),
        # a transmit header with offloads: NEEDS_CSUM, GSO TCPv4, hdr_len, gso_size, csum
        # start and offset (passed to the TAP as they are: its kernel parses them)
        'tx-gso': head + chain(1, [desc(0x8000, 12 + 66, data=struct.pack(
            '<BBHHHHH', 1, 1, 54, 1448, 34, 16, 0) + frame[12:12 + 52])]) + u8(FT_OPS + 1)
        + collect(1),
        # version, MAC, status (link up), rx on: refused, the control queue is negotiated
        'state-load': head + rx + state_load(u8(1) + bytes(range(6)) + u16(1) + u8(1))
        + host_frame + collect(0) + tx + u8(FT_OPS + 1) + collect(1),
        # ... and loaded by a driver without it (features: VERSION_1 and MAC only)
        'state-load-v1': u8(0) + u64((1 << 32) | (1 << 5)) + u8(6) * 3 + rx
        + state_load(u8(1) + bytes(range(6)) + u16(1) + u8(1)) + host_frame + collect(0),
        # version 2: MAC, status (link up, announce), rx on, configured MAC, the filter
        # (promisc off, allmulti off, no overflow, one unicast and one multicast entry)
        'state-load-v2': head + rx + state_load(
            u8(2) + bytes(range(6)) + u16(3) + u8(1) + bytes(range(6)) + bytes(4) + u8(1) + u8(1)
            + (b'\x02' * 6).ljust(64 * 6, b'\0') + (b'\x33\x33\0\0\0\1').ljust(64 * 6, b'\0'))
        + event() + host_frame + collect(0) + ctrl(b'\x03\x00') + collect(2),
        # the control queue: receive modes, the MAC table, a new MAC, the announcement
        'ctrl-rx-mode': head + rx + ctrl(b'\x00\x00\x00') + ctrl(b'\x00\x01\x01', True)
        + host_frame + collect(0) + collect(2),
        'ctrl-mac-table': head + rx + ctrl(b'\x00\x00\x00') + ctrl(
            mac_table([bytes(range(6))], [b'\x33\x33\0\0\0\1', b'\x01\0\x5e\0\0\1']), True)
        + host_frame + collect(0) + collect(2),
        'ctrl-mac-overflow': head + ctrl(b'\x00\x00\x00') + ctrl(
            mac_table([], [bytes([1, 0, 0x5e, 0, 0, i]) for i in range(70)]), True) + collect(2),
        'ctrl-mac-lie': head + ctrl(mac_table([bytes(6)], [], lie=0xffffffff), True) + collect(2),
        'ctrl-mac-addr': head + ctrl(b'\x01\x01' + bytes([2, 0x54, 0, 1, 2, 4]), True)
        + config_read(0, 6) + collect(2),
        'ctrl-announce': head + rx + state() + event() + config_read(6, 2)
        + ctrl(b'\x03\x00') + collect(2) + config_read(6, 2),
        'ctrl-unknown': head + ctrl(b'\x02\x00\x01\x00', True) + ctrl(b'\x04\x00\x01\x00', True)
        + ctrl(b'\xc8\x07') + ctrl(b'\x00') + collect(2),
    }


# --- virtio-vsock and the handshake ---

PORT_1000, PORT_1001, PORT_HOST0, PORT_1234 = 0, 1, 2, 4


def vpkt(op, src, dst, plen=0, payload=b'', flags=0):
    return u8(FT_OPS) + u8(0) + u8(op) + u8(src) + u8(dst) + u8(flags) + u16(plen) + payload


def vhost(op, sel, extra=b''):
    return u8(FT_OPS + 3) + u8(op) + u8(sel) + extra


def vsock_seeds():
    head = u64(ALL) + u8(6) * 3
    fill = u8(FT_OPS + 1) + u8(200)
    answer = u8(FT_OPS + 2) + u8(0)
    connect_guest = fill + vpkt(1, PORT_1234, PORT_1000) + vhost(6, 0) + answer
    return {
        'guest-connect': head + connect_guest + vpkt(5, PORT_1234, PORT_1000, 16, b'hello, host!....')
        + vhost(4, 0x80) + vhost(1, 0x80, u8(5) + b'hi g\n') + answer,
        'guest-shutdown': head + connect_guest + vpkt(4, PORT_1234, PORT_1000, flags=3)
        + vhost(6, 0) + answer,
        'guest-credit': head + connect_guest + vpkt(7, PORT_1234, PORT_1000)
        + vpkt(6, PORT_1234, PORT_1000) + answer,
        'guest-refused': head + fill + vpkt(1, PORT_1234, 4) + answer + vpkt(3, PORT_1234, 4),
        'host-connect': head + fill + vhost(0, 0) + vhost(2, 0, u32(1234)) + answer
        + vhost(4, 0) + vhost(1, 0, u8(4) + b'data') + answer,
        'big-payload': head + connect_guest + u8(FT_OPS) + u8(0x40) + u8(5) + u8(PORT_1234)
        + u8(PORT_1000) + u8(0) + u16(40000) + answer,
        'reset-event': head + fill + state() + event() + answer,
        # version, guest CID
        'state-load': head + fill + state_load(u8(1) + u64(7)) + event() + answer
        + config_read(0, 8),
        # regression: a snapshot's CID was taken as it was (the host's, 2, here)
        'state-load-host-cid': head + state_load(u8(1) + u64(2)) + config_read(0, 8),
    }


def handshake_seeds():
    def line(sel, port):
        return u8(2) + u8(sel) + u32(port)

    def raw(sel, data):
        return u8(1) + u8(sel) + u8(len(data)) + data

    conn = u8(0) + u8(0)
    answer = u8(5) + u8(0)
    return {
        'connect': conn + line(0, 1000) + answer + u8(4) + u8(0) + raw(0, b'after'),
        'refused': conn + line(0, 7) + u8(5) + u8(1) + u8(4) + u8(0),
        'partial': conn + raw(0, b'CONN') + raw(0, b'ECT 5') + raw(0, b'\n') + answer,
        'long': conn + raw(0, b'CONNECT ' + b'1' * 40 + b'\n'),
        'garbage': conn + raw(0, b'\x00\xffGET / HTTP/1.0\r\n'),
        'data-after-line': conn + raw(0, b'CONNECT 9\nDATA') + answer + u8(4) + u8(0),
        'hangup': conn + raw(0, b'CONNECT 3') + u8(3) + u8(0) + conn + line(0, 4) + u8(3)
        + u8(0x40) + answer,
        'many': b''.join(u8(0) + u8(i) + line(i, 100 + i) for i in range(8)) + answer,
    }


# --- the MMIO register file ---

def mmio_seeds():
    bring_up = u8(5) + u8(0x1b) + u32(0x3000ff00)

    def mchain(q, descs):
        out = u8(7) + u8(q) + u8(len(descs) - 1) + u8(0)
        for addr, length, flags in descs:
            out += u16(addr) + u16(length) + u8(flags)
        return out

    def reg(idx, kind, value):
        return u8(2) + u8(idx) + u8(kind) + value

    serve = u8(6)
    return {
        'bring-up-serve': bring_up + mchain(0, [(0, 16, 0), (0x100, 64, 2)]) + serve + u8(0),
        'state': bring_up + mchain(1, [(0x200, 8, 2)]) + u8(12) + u8(0) + serve + u8(1),
        'state-flipped': bring_up + u8(12) + u8(2) + u16(20) + u8(0xff) + u16(40) + u8(0x80)
        + serve + u8(2),
        'bad-queue': reg(5, 1, u8(7)) + reg(7, 1, u8(3)) + reg(13, 3, u8(8)) + reg(8, 1, u8(1)),
        'status-order': reg(12, 1, u8(4)) + reg(12, 1, u8(0xb)) + reg(12, 1, u8(0xf))
        + u8(10) + reg(12, 1, u8(0)),
        'raw': u8(0) + u16(0x8 + 0x70) + u8(3) + u64(3) + u8(1) + u16(0x8 + 0x100) + u8(7) + u64(0)
        + u8(0) + u16(0x8 + 0xffe) + u8(3) + u64(0x1234),
        'fail-config': bring_up + u8(8) + u8(9) + u8(1) + u16(0x8 + 0x60) + u8(3) + u64(0)
        + u8(0) + u16(0x8 + 0x64) + u8(3) + u64(3),
        # regression: queue 0's size (state offset 43, le16) loaded as 256, above QueueNumMax
        'state-queue-size': u8(12) + u8(1) + u16(44) + u8(0x01) + bring_up + serve + u8(0),
        # regression: negotiated features (state offset 22, le64) loaded with bit 62, never offered
        'state-features': bring_up + u8(12) + u8(1) + u16(29) + u8(0x40) + serve + u8(0),
    }


# --- the legacy PIO devices ---

def legacy_seeds():
    COM1, KBD, RTC, ACPI, POST = range(5)

    def out(dev, off, size_code, data, count=1):
        return u8(1) + u8(dev | (count - 1) << 5) + u8(off + 2) + u8(size_code) + data

    def inp(dev, off, size_code=0, count=1):
        return u8(0) + u8(dev | (count - 1) << 5) + u8(off + 2) + u8(size_code)

    return {
        'serial-init': out(COM1, 3, 0, b'\x80') + out(COM1, 0, 0, b'\x0c') + out(COM1, 1, 0, b'\x00')
        + out(COM1, 3, 0, b'\x03') + out(COM1, 4, 0, b'\x0b') + out(COM1, 1, 0, b'\x02')
        + inp(COM1, 2) + out(COM1, 0, 0, b'A') + inp(COM1, 5),
        'serial-loop': out(COM1, 4, 0, b'\x1f') + out(COM1, 0, 0, b'x') + inp(COM1, 0)
        + inp(COM1, 6) + u8(4) + u8(3) + b'abc' + out(COM1, 2, 0, b'\x07'),
        'serial-wide': out(COM1, 0, 2, b'abcd') + inp(COM1, 4, 2) + out(COM1, 0, 0, b'zz', 2),
        'i8042': out(KBD, 4, 0, b'\xaa') + inp(KBD, 0) + out(KBD, 4, 0, b'\x60')
        + out(KBD, 0, 0, b'\x47') + out(KBD, 0, 0, b'\xf2') + inp(KBD, 0, 0, 3) + u8(5)
        + inp(KBD, 4),
        'i8042-reset': out(KBD, 4, 0, b'\xd1') + out(KBD, 0, 0, b'\x00') + out(KBD, 4, 0, b'\xfe'),
        'rtc': out(RTC, 0, 0, b'\x00') + inp(RTC, 1) + out(RTC, 0, 0, b'\x0b')
        + out(RTC, 1, 0, b'\x86') + out(RTC, 0, 0, b'\x09') + out(RTC, 1, 0, b'\x99')
        + out(RTC, 0, 0, b'\x0b') + out(RTC, 1, 0, b'\x02') + out(RTC, 0, 1, b'\x32\x20'),
        'acpi': out(ACPI, 0, 0, b'\x20') + out(ACPI, 4, 0, b'\x01') + inp(ACPI, 0, 2)
        + out(POST, 0, 0, b'\x00'),
        'state': out(COM1, 1, 0, b'\x0f') + u8(7) + u8(0) + u8(0) + u8(7) + u8(1) + u8(1)
        + u16(3) + u8(0xff) + u8(6) + u8(7) + u8(2) + u8(0),
    }


# --- kernel loader (fuzz_loader.c) ---

def bzimage(setup_sects=4, protocol=0x20F, xload=1, init_size=0x200000, payload=64,
            initrd_max=0x7FFFFFFF, cmdline_size=2048, pref=0x100000):
    sects = setup_sects or 4  # 0 means 4
    f = bytearray((sects + 1) * 512 + payload)
    f[0x1F1] = setup_sects
    struct.pack_into('<H', f, 0x1FE, 0xAA55)
    f[0x201] = 0x6A  # the setup header ends at 0x202 + this jump offset
    f[0x202:0x206] = b'HdrS'
    struct.pack_into('<H', f, 0x206, protocol)
    struct.pack_into('<I', f, 0x22C, initrd_max)
    struct.pack_into('<H', f, 0x236, xload)
    struct.pack_into('<I', f, 0x238, cmdline_size)
    struct.pack_into('<Q', f, 0x258, pref)  # pref_address
    struct.pack_into('<I', f, 0x260, init_size)
    for i in range(payload):
        f[(sects + 1) * 512 + i] = i
    return bytes(f)


def elf64(segments, notes=b'', entry=0x1000000):
    """An x86-64 ELF: PT_LOAD segments (paddr, filesz, memsz), then a PT_NOTE."""
    phnum = len(segments) + (1 if notes else 0)
    off = 64 + 56 * phnum
    ph, body = b'', b''
    for paddr, filesz, memsz in segments:
        ph += struct.pack('<IIQQQQQQ', 1, 7, off + len(body), paddr, paddr, filesz, memsz, 0x1000)
        body += bytes((i * 7) & 0xFF for i in range(filesz))
    if notes:
        ph += struct.pack('<IIQQQQQQ', 4, 4, off + len(body), 0, 0, len(notes), len(notes), 4)
        body += notes
    ident = b'\x7fELF' + bytes([2, 1, 1]) + bytes(9)
    eh = ident + struct.pack('<HHIQQQIHHHHHH', 2, 62, 1, entry, 64, 0, 0, 64, 56, phnum, 0, 0, 0)
    return eh + ph + body


def note(name, typ, desc):
    pad = lambda b: b + bytes(-len(b) % 4)
    return struct.pack('<III', len(name), len(desc), typ) + pad(name) + pad(desc)


def loader_seeds():
    def inp(flags, initrd, cmdline, kernel):
        return u8(flags) + u32(initrd) + u16(len(cmdline)) + cmdline + kernel
    pvh = note(b'Xen\0', 18, u32(0x1000000))
    other = note(b'GNU\0', 3, bytes(20))
    return {
        'bzimage': inp(1, 0, b'console=ttyS0', bzimage()),
        'bzimage-initrd': inp(1 | 4, 0x3000, b'console=ttyS0 root=/dev/vda', bzimage()),
        'bzimage-tight': inp(0 | 4, 0x1000, b'', bzimage(init_size=0x80000, initrd_max=0x1FFFFF)),
        'bzimage-old': inp(1, 0, b'quiet', bzimage(protocol=0x205)),
        'bzimage-highmem': inp(2 | 8 | 4, 0x2000, b'x' * 300, bzimage(setup_sects=0, cmdline_size=255)),
        'elf': inp(1, 0, b'console=ttyS0', elf64([(0x100000, 256, 0x2000)])),
        'elf-pvh': inp(1 | 4, 0x5000, b'console=ttyS0', elf64([(0x100000, 128, 128), (0x200000, 64, 0x1000)], other + pvh)),
        'elf-pvh8': inp(2, 0, b'a=b', elf64([(0x100000, 64, 64)], note(b'Xen\0', 18, u64(0x100040)))),
        'elf-high': inp(1 | 8, 0, b'', elf64([(0x100000000, 64, 0x1000)])),
    }


# --- snapshots (fuzz_snapshot.c): sections as the VMM writes them ---

def sstr(v):
    """A string of the binary sections: u32 length (UINT32_MAX: none), then its bytes."""
    return u32(0xFFFFFFFF) if v is None else u32(len(v)) + v


def vcpu_state(ncpuid=3, xsave=True, xcrs=True, msrs=((0x10, 1 << 20), (0x6E0, 0), (0xC0000080, 0x500)),
               lapic=True):
    out = u8(1) + u32(ncpuid)
    for i in range(ncpuid):
        out += u32([1, 7, 0x80000001][i % 3]) + u32(0) + u32(0) + u32(0x11) * 4
    out += u32(2_000_000)  # tsc_khz
    out += b''.join(u64(0x1000 * i) for i in range(18))  # rax..r15, rip, rflags
    seg = lambda sel, typ, l: u64(0) + u32(0xFFFFFFFF) + u16(sel) + bytes([typ, 1, 0, 0, 1, l, 1, 0, 0])
    out += seg(0x10, 11, 1) + b''.join(seg(0x18, 3, 0) for _ in range(5)) + seg(0x20, 11, 0) + seg(0, 2, 0)
    out += (u64(0x500) + u16(0x27)) + (u64(0) + u16(0))  # gdt, idt
    out += u64(0x80050033) + u64(0) + u64(0x9000) + u64(0x6A0) + u64(0) + u64(0xD01) + u64(0xFEE00900)
    out += bytes(32)  # interrupt bitmap
    if xsave:
        out += u8(1) + u32(1024) + bytes((i * 3) & 0xFF for i in range(1024))
    else:
        out += u8(0) + bytes(128) + u16(0x37F) + u16(0) + u8(0) + u16(0) + u64(0) + u64(0) + bytes(256) + u32(0x1F80)
    out += u8(1) + u32(1) + u32(0) + u32(0) + u64(7) if xcrs else u8(0)
    out += u32(len(msrs)) + b''.join(u32(i) + u64(v) for i, v in msrs)
    out += u8(1) + bytes((i * 5) & 0xFF for i in range(1024)) if lapic else u8(0)
    out += u32(0)  # mp_state
    out += bytes(4) + u32(0) + bytes(4) + bytes(3) + u32(0) + u32(0) + bytes(4) + u8(0) + u8(0) + u64(0)
    out += u64(0) * 4 + u64(0xFFFF0FF0) + u64(0x400) + u64(0)
    return out


def vcpus_section(n, **kw):
    return u32(n) + b''.join(u32(len(v)) + v for v in [vcpu_state(**kw)] * n)


def vm_section(irqchip=True, load_time=1_000_000):
    out = u8(1) + u8(1 if irqchip else 0)
    if irqchip:
        pic = bytes([0, 0, 0xFF, 0, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0xF8])
        out += pic + pic[:5] + bytes([0x28]) + pic[6:]
        out += u64(0xFEC00000) + u32(0) + u32(0) + u32(0) + b''.join(u64(0x10000 | i) for i in range(24))
        for ch in range(3):
            out += u32(0x10000) + u16(0) + bytes([0, 0, 0, 0, 3, 0, 3, 2 if ch == 0 else 3, 0, 1 if ch != 2 else 0])
            out += u64(load_time)
        out += u32(0) + u64(load_time + 5000)
    return out + u64(123456789) + u32(0)


DEVICES = [('vmgenid', 'vmgenid', u8(1) + u64(0xF0000)), ('post', 'post', b''),
           ('acpi_pm', 'acpi_pm', b''), ('rtc', 'rtc', u8(0x0B) + bytes(range(128)) + u64(0)),
           ('i8042', 'i8042', bytes(8) + bytes(32) + u8(0) + u8(2)),
           ('serial', 'com1', bytes([0, 3, 8, 0, 12, 0, 0, 0, 0xB0, 0]) + u16(0) + u16(0) + bytes(64))]


def devices_section(devices=DEVICES):
    return u32(len(devices)) + b''.join(
        sstr(n.encode()) + sstr(i.encode()) + u32(len(b)) + b for n, i, b in devices)


def config_v3(ncpus=1, extra='', machine=''):
    doc = ('{"boot-source": {"kernel_image_path": "/k", "boot_args": "console=ttyS0"}, '
           '"machine-config": {"vcpu_count": %d, "mem_size_mib": 256, "smt": false, '
           '"track_dirty_pages": true%s}%s}' % (ncpus, machine, extra))
    return u8(3) + doc.encode()


def config_legacy(version, ncpus=1):
    out = u8(version) + u32(ncpus) + u64(256 << 20) + u8(0) + u8(0)
    out += sstr(b'/k') + sstr(None) + sstr(b'console=ttyS0 root=/dev/vda')
    out += u8(2)
    for i, (path, ro) in enumerate([(b'/nonexistent.img', 0), (b'/data.img', 1)]):
        out += sstr(path) + (sstr(b'rootfs') if i == 0 else sstr(None)) + u8(ro) + u8(i)
        if version >= 2:
            out += sstr(b'/run/vda.overlay' if i == 0 else None)
    out += u8(1)  # entropy
    out += u8(1) + sstr(b'tap0') + sstr(None) + bytes([6, 0, 0xAC, 0x10, 0, 2]) + u8(1)
    return out + u32(3) + sstr(b'/run/v.sock')


def snapshot_input(flags, ncpus, sections, bitmap=None):
    out = u8(flags | 1) + u8(ncpus - 1)
    for sec in sections:
        out += u16(len(sec)) + sec
    if bitmap is not None:
        out += u16(len(bitmap)) + bitmap
    return out


def manifest(typ='full', parent=None, sections=(), vcpus=1):
    import json
    secs = [{'name': n, 'file': n + '.state', 'size': sz, 'crc32': 0} for n, sz in sections]
    return json.dumps({'format': 'banyan-snapshot', 'version': 1, 'id': '7' * 32, 'type': typ,
                       'parent': parent, 'created': 1, 'vmm_version': 'fuzz', 'vcpus': vcpus,
                       'memory': {'file': 'memory', 'size': 256 << 20, 'pages_present': 0,
                                  'pages_data': 0, 'crc32': 0},
                       'sections': secs}).encode()


def snapshot_seeds():
    full = [config_v3(), devices_section(), vcpus_section(1), vm_section()]
    two = [config_v3(2), devices_section(), vcpus_section(2, xsave=False, xcrs=False), vm_section()]
    noirq = [config_v3(machine=', "no_irqchip": true'),
             devices_section(), vcpus_section(1, lapic=False), vm_section(irqchip=False)]
    net = (', "network-interfaces": [{"iface_id": "eth0", "host_dev_name": "tap0", '
           '"guest_mac": "06:00:ac:10:00:02"}], "vsock": {"guest_cid": 3, "uds_path": "/run/v.sock"}, '
           '"entropy": {}, "drives": [{"drive_id": "rootfs", "path_on_host": "/nonexistent.img", '
           '"is_root_device": true, "is_read_only": false, "overlay_path": "/run/vda.overlay"}]')
    pages = bytes([0x01, 0, 0, 0, 0, 0, 0, 0x80]) + bytes(8) + bytes([0xFF])
    return {
        'gen-full': snapshot_input(0, 1, full),
        'gen-full-2cpus': snapshot_input(0, 2, two),
        'gen-no-irqchip': snapshot_input(0, 1, noirq),
        'gen-devices-config': snapshot_input(4, 1, [config_v3(extra=net)] + full[1:]),
        'gen-config-v1': snapshot_input(0, 1, [config_legacy(1)] + full[1:]),
        'gen-config-v2': snapshot_input(0, 1, [config_legacy(2)] + full[1:]),
        'gen-crc-wrong': snapshot_input(2, 1, full),
        'gen-diff': snapshot_input(8, 1, full, pages),
        'gen-diff-moved': snapshot_input(8 | 32, 1, full, pages),
        'gen-diff-chain': snapshot_input(8 | 64, 1, full, pages),
        'gen-diff-map-size': snapshot_input(8 | 16, 1, full, pages),
        'gen-manifest-full': u8(0) + u8(0) + manifest(sections=[('config', 10)]),
        'gen-manifest-diff': u8(0) + u8(1) + manifest('diff', {'id': 'f' * 32, 'path': '/nonexistent'},
                                                       [('memory.map', 8192)]),
    }


# --- the config document (fuzz_config.c): a whole --config file, or one section's body ---

def config_seeds():
    import json
    boot = {'kernel_image_path': '/k', 'initrd_path': '/i', 'boot_args': 'console=ttyS0 quiet'}
    machine = {'vcpu_count': 2, 'mem_size_mib': 512, 'smt': False, 'track_dirty_pages': True,
               'on_reboot': 'Restart'}
    root = {'drive_id': 'rootfs', 'path_on_host': '/nonexistent.img', 'is_root_device': True,
            'is_read_only': False, 'partuuid': '0eaa91a0-01', 'cache_type': 'Writeback',
            'io_engine': 'Sync', 'rate_limiter': None}
    data = {'drive_id': 'data_1', 'path_on_host': '/data.img', 'is_root_device': False,
            'is_read_only': True, 'cache_type': 'Unsafe', 'io_engine': 'Async',
            'overlay_path': '/run/data.overlay'}
    net = {'iface_id': 'eth0', 'host_dev_name': 'tap0', 'guest_mac': '06:00:ac:10:00:02'}
    full = {'boot-source': boot, 'machine-config': machine, 'drives': [root, data],
            'network-interfaces': [net, {'iface_id': 'eth1', 'host_dev_name': 'tap1'}],
            'vsock': {'guest_cid': 3, 'uds_path': '/run/v.sock', 'vsock_id': 'vsock0'},
            'entropy': {}, 'logger': {'log_path': '/run/log', 'level': 'Debug'},
            'metrics': {'metrics_path': '/run/metrics'}, 'balloon': None}
    doc = lambda d: u8(0) + json.dumps(d).encode()
    sec = lambda k, b: u8(1 + k) + json.dumps(b).encode()
    return {
        'document-full': doc(full),
        'document-minimal': doc({'boot-source': {'kernel_image_path': '/k'}}),
        'document-no-kernel': doc({'boot-source': {}, 'machine-config': machine}),
        'machine-put': sec(0, machine),
        'machine-patch': sec(1, {'vcpu_count': 4}),
        'boot-source': sec(2, boot),
        'drive-put': sec(3, root),
        'drive-patch': sec(4, {'drive_id': 'rootfs', 'path_on_host': '/other.img'}),
        'drive-data': sec(5, data),
        'net-put': sec(6, net),
        'net-patch': sec(7, {'iface_id': 'eth0', 'rx_rate_limiter': None}),
        'vsock': sec(8, {'guest_cid': 4294967294, 'uds_path': '/run/v.sock'}),
        'entropy': sec(9, {'rate_limiter': None}),
        'logger': sec(10, {'log_path': '/run/log', 'level': 'Warning', 'show_level': True}),
        'metrics': sec(11, {'metrics_path': '/run/metrics'}),
    }


def migration_seeds():
    """Live-migration streams (fuzz_migration.c): header, then sections."""
    import zlib

    def sec(tag, body=b''):
        return u32(tag) + u32(len(body)) + u32(zlib.crc32(body)) + body

    def run(gpa, pages, kind, data=b''):
        return u64(gpa) + u32(pages) + u32(kind) + data

    page = bytes(range(256)) * 16
    mem = run(0, 1, 0, page) + run(0x1000, 2, 1) + run(0x80000, 1, 0, page)
    ram = bytearray(2 * 64 * 4096)  # the fuzzer's two regions, as loaded
    ram[0:4096] = page
    ram[64 * 4096:65 * 4096] = page
    head = b'BANYANMG' + u32(1)
    body = sec(1, b'\x02{}') + sec(2, mem) + sec(3, b'\x00') + sec(4) + sec(5, b'\x00\x01')
    return {
        'plain': head + u32(0) + body + sec(7) + sec(8),
        'verified': head + u32(1) + body + sec(7) + sec(6, u32(zlib.crc32(bytes(ram)))) +
        sec(8),
        'verified-pages': head + u32(9) + body + sec(7) +
        sec(6, u32(zlib.crc32(bytes(ram))) + b''.join(
            u32(zlib.crc32(bytes(ram[i:i + 4096]))) for i in range(0, len(ram), 4096))) +
        sec(8),
        'refused': head + u32(0) + sec(1, b'\x01'),
        'straddle': head + u32(0) + sec(1, b'\x00') + sec(2, run(0x3f000, 2, 1)),
        # post-copy page traffic (pc_traffic): flags, list, then records
        'postcopy': postcopy_seed(run, page, False),
        'postcopy-verified': postcopy_seed(run, page, True),
    }


def postcopy_seed(run, page, verify):
    """Pages 1-3 and 0x80000 missing; a fault, a request, pages twice, the end."""
    lst = run(0x1000, 3, 0) + run(0x80000, 1, 0) + run(0x2000, 1, 0)  # page 2 named twice
    mem = run(0x1000, 2, 0, page + page) + run(0x3000, 1, 1)
    recs = (u8(0) + u32(0x1000) + u8(0) + u32(0x9000) + u8(0) + u32(0x90000) +
            u8(2) + u8(16) + run(0x1000, 1, 0) +
            u8(1) + u16(len(mem)) + mem +
            u8(1) + u16(len(mem)) + mem +  # again: the first copy counts
            u8(1) + u16(16 + 4096) + run(0x80000, 1, 0, page) +
            u8(3) + u8(16) + u64(4) + u64(0))
    return b'BANYANPC' + u8(1 if verify else 0) + u16(len(lst)) + lst + recs


# --- fuzz_mmds.c: [mode] then raw frames or operations on one connection ---

MMDS_IP = bytes([169, 254, 169, 254])
GUEST_IP = bytes([10, 0, 0, 2])
GUEST_MAC = bytes([2, 0, 0, 0, 0, 1])
MMDS_MAC = bytes([2, 0x6d, 0x6d, 0x64, 0x73, 0])


def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return struct.pack('!H', ~s & 0xFFFF)


def vnet(frame, needs_csum=None):
    """A 12-byte virtio-net header (NEEDS_CSUM with start, offset) and the frame."""
    if needs_csum:
        hdr = struct.pack('<BBHHHHH', 1, 0, 0, 0, needs_csum[0], needs_csum[1], 0)
    else:
        hdr = bytes(12)
    return u16(12 + len(frame)) + hdr + frame


def arp_frame(target=MMDS_IP):
    return (b'\xff' * 6 + GUEST_MAC + b'\x08\x06' + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1)
            + GUEST_MAC + GUEST_IP + bytes(6) + target)


def tcp_frame(flags, seq, ack, data=b'', partial=False):
    ip = struct.pack('!BBHHHBB', 0x45, 0, 40 + len(data), 0, 0x4000, 64, 6) + bytes(2) + GUEST_IP + MMDS_IP
    ip = ip[:10] + csum(ip) + ip[12:]
    tcp = struct.pack('!HHIIBBH', 40000, 80, seq, ack, 5 << 4, flags, 65535) + bytes(4) + data
    pseudo = GUEST_IP + MMDS_IP + struct.pack('!BBH', 0, 6, len(tcp))
    if partial:  # the guest left the sum to the device: only the pseudo header's
        c = csum(pseudo)
        c = struct.pack('!H', ~struct.unpack('!H', c)[0] & 0xFFFF)
    else:
        c = csum(pseudo + tcp)
    tcp = tcp[:16] + c + tcp[18:]
    return MMDS_MAC + GUEST_MAC + b'\x08\x00' + ip + tcp


def mmds_seeds():
    def data(b):
        return u8(0) + u16(len(b)) + b
    get = b'GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n'
    put = (b'PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-seconds: 60\r\n\r\n')
    json_get = (b'GET /latest/meta-data HTTP/1.1\r\nAccept: application/json\r\n'
                b'X-metadata-token: AAAA\r\n\r\n')
    return {
        'v1-get': u8(0) + data(get),
        'v1-get-split': u8(0) + data(get[:10]) + data(get[10:30]) + data(get[30:]) + u8(2),
        'v2-token': u8(1) + data(put),
        'v2-get-json': u8(3) + data(json_get) + u8(3),
        'out-of-window': u8(0) + u8(1) + u8(0x18) + u32(100000) + u16(len(get)) + get,
        'rst': u8(0) + u8(1) + u8(0x14) + u32(0) + u16(0),
        'bad-method': u8(0) + data(b'DELETE / HTTP/1.1\r\n\r\n'),
        'raw-arp': u8(4) + vnet(arp_frame()),
        'raw-syn': u8(4) + vnet(arp_frame()) + vnet(tcp_frame(0x02, 1000, 0)),
        'raw-syn-partial-csum': u8(4) + vnet(arp_frame())
        + vnet(tcp_frame(0x02, 1000, 0, partial=True), needs_csum=(34, 16)),
        'raw-data': u8(4) + vnet(arp_frame()) + vnet(tcp_frame(0x02, 1000, 0))
        + vnet(tcp_frame(0x18, 1001, 0, get)),
        'http-only': get,
    }


def main():
    targets = {
        'mmds': mmds_seeds(),
        'virtio_blk': blk_seeds(),
        'virtio_net': net_seeds(),
        'virtio_vsock': vsock_seeds(),
        'vsock_handshake': handshake_seeds(),
        'virtio_mmio': mmio_seeds(),
        'legacy': legacy_seeds(),
        'loader': loader_seeds(),
        'snapshot': snapshot_seeds(),
        'config': config_seeds(),
        'migration': migration_seeds(),
    }
    for target, seeds in targets.items():
        d = os.path.join(HERE, 'corpus', target) if target != 'snapshot' else \
            os.path.join(HERE, 'corpus-snapshot')
        os.makedirs(d, exist_ok=True)
        for name, blob in seeds.items():
            with open(os.path.join(d, name), 'wb') as f:
                f.write(blob)
    return 0


if __name__ == '__main__':
    sys.exit(main())
