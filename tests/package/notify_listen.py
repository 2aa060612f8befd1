#!/usr/bin/env python3
"""Stand in for systemd's notification socket: bind the abstract datagram
socket NAME, print each message received (one per line, flushed) until
TIMEOUT seconds pass without one.

Usage: notify_listen.py NAME TIMEOUT
"""
import socket
import sys

name, timeout = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('\0' + name)
s.settimeout(timeout)
print('listening', flush=True)
try:
    while True:
        print(s.recv(4096).decode(errors='replace').replace('\n', ' '), flush=True)
except socket.timeout:
    pass
