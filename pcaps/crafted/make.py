#!/usr/bin/env python3
"""Writes the crafted captures of pcaps/crafted/: traffic that a fuzzer, a misbehaving
device or a broken capture produces, which the public captures do not hold. Deterministic:
running it again writes the same bytes. Run from the repository root:

    python3 pcaps/crafted/make.py
"""
import random
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack(f"!{len(b)//2}H", b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a):
    return bytes([10, 0, 0, a])


def tcp(src, sport, dst, dport, seq, ack, flags, payload=b""):
    """An Ethernet/IPv4/TCP frame with correct checksums. flags: a string of S, A, P, F, R."""
    f = sum({"F": 1, "S": 2, "R": 4, "P": 8, "A": 16}[c] for c in flags)
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, f, 8192, 0, 0)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(hdr) + len(payload))
    c = csum(pseudo + hdr + payload)
    hdr = hdr[:16] + struct.pack("!H", c) + hdr[18:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(hdr) + len(payload), 1, 0x4000, 64, 6, 0, ip4(src), ip4(dst))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    macs = (MAC_B + MAC_A) if src == 1 else (MAC_A + MAC_B)
    return macs + b"\x08\x00" + iph + hdr + payload


def write(name, frames):
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, fr in enumerate(frames):
        ts = 1_700_000_000 + i
        out += struct.pack("<IIII", ts, 1000 * i, len(fr), len(fr)) + fr
    (HERE / name).write_bytes(out)


def mbap(tid, unit, pdu):
    return struct.pack("!HHHB", tid, 0, len(pdu) + 1, unit) + pdu


class Conn:
    """A TCP connection between client 10.0.0.1 and server 10.0.0.2, tracking sequence numbers."""

    def __init__(self, cport, sport, cseq=1000, sseq=5000):
        self.cport, self.sport, self.c, self.s = cport, sport, cseq, sseq
        self.frames = []

    def handshake(self, server_opens=False):
        if server_opens:
            # The host on the watched port opens the connection.
            self.frames.append(tcp(2, self.sport, 1, self.cport, self.s - 1, 0, "S"))
            self.frames.append(tcp(1, self.cport, 2, self.sport, self.c - 1, self.s, "SA"))
            self.frames.append(tcp(2, self.sport, 1, self.cport, self.s, self.c, "A"))
        else:
            self.frames.append(tcp(1, self.cport, 2, self.sport, self.c - 1, 0, "S"))
            self.frames.append(tcp(2, self.sport, 1, self.cport, self.s - 1, self.c, "SA"))
            self.frames.append(tcp(1, self.cport, 2, self.sport, self.c, self.s, "A"))

    def to_server(self, p):
        self.frames.append(tcp(1, self.cport, 2, self.sport, self.c, self.s, "PA", p))
        self.c += len(p)

    def to_client(self, p):
        self.frames.append(tcp(2, self.sport, 1, self.cport, self.s, self.c, "PA", p))
        self.s += len(p)


def fuzz_unknown_functions():
    c = Conn(40001, 502)
    c.handshake()
    c.to_server(mbap(1, 1, b"\x00"))  # function 0, no data: a fuzzer's first probe
    c.to_client(mbap(1, 1, b"\x80\x01"))  # exception to function 0: ILLEGAL_FUNCTION
    c.to_server(mbap(2, 1, b"\x63\x00\x01"))  # function 99: unknown
    c.to_client(mbap(2, 1, b"\xe3\x01"))  # its exception
    c.to_server(mbap(3, 1, b"\x03\x00\x10\x00\x02"))  # read holding registers 16, 2
    c.to_client(mbap(3, 1, b"\x83\x2a"))  # exception code 42: not defined
    c.to_server(mbap(4, 1, b"\x08\x00\x63\x00\x00"))  # diagnostics sub-function 99: not defined
    c.to_client(mbap(4, 1, b"\x08\x00\x63\x00\x00"))  # echoed
    c.to_server(mbap(5, 1, b"\x2b\x0e\x01\x00"))  # read device identification, basic
    objs = b"\x00\x04Acme" + b"\x00\x04Evil" + b"\x01\x04PLC1"  # VendorName twice
    c.to_client(mbap(5, 1, b"\x2b\x0e\x01\x01\x00\x00\x03" + objs))
    c.to_server(mbap(6, 1, b"\x00\xde\xad"))  # function 0 again, with data
    c.to_server(mbap(7, 1, b"\x03\x00\x00\x00\x01"))  # read holding registers 0, 1
    c.to_client(mbap(7, 1, b"\x03\x02\x00\x2a"))  # 42
    write("modbus-fuzz-unknown-functions.pcap", c.frames)


def reversed_connection():
    c = Conn(40002, 502)
    c.handshake(server_opens=True)
    for tid in range(1, 4):
        c.to_server(mbap(tid, 1, b"\x03\x00\x00\x00\x02"))  # read holding registers 0, 2
        c.to_client(mbap(tid, 1, b"\x03\x04\x00\x01\x00\x02"))
    write("modbus-reversed-connection.pcap", c.frames)


def wild_sequence_numbers():
    rng = random.Random(9)
    frames = []
    # A connection picked up mid-stream whose every segment carries a sequence number that
    # follows nothing before it: 36 packets, requests and responses.
    for tid in range(1, 19):
        frames.append(tcp(1, 40003, 2, 502, rng.getrandbits(32), rng.getrandbits(32), "PA",
                          mbap(tid, 1, b"\x04\x00\x00\x00\x01")))  # read input registers 0, 1
        frames.append(tcp(2, 502, 1, 40003, rng.getrandbits(32), rng.getrandbits(32), "PA",
                          mbap(tid, 1, b"\x04\x02\x00\x07")))
    write("modbus-wild-sequence-numbers.pcap", frames)


def dnp3_crc(b):
    crc = 0
    for x in b:
        crc ^= x
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA6BC if crc & 1 else crc >> 1
    return struct.pack("<H", ~crc & 0xFFFF)


def dnp3_frame(control, dst, src, user):
    h = struct.pack("<BBBBHH", 0x05, 0x64, 5 + len(user), control, dst, src)
    out = h + dnp3_crc(h)
    for i in range(0, len(user), 16):
        blk = user[i:i + 16]
        out += blk + dnp3_crc(blk)
    return out


def dnp3_tricks():
    c = Conn(40004, 20000)
    # The outstation (on port 20000) opens the connection to the master.
    c.handshake(server_opens=True)
    read = b"\xc0" + b"\xc1\x01\x3c\x02\x06"  # transport FIR FIN seq 0; app FIR FIN seq 1, READ g60v2 all
    c.to_server(dnp3_frame(0xC4, 10, 1, read))  # a plain read, unconfirmed user data
    c.to_client(dnp3_frame(0x44, 1, 10, b"\xc0\xc1\x81\x00\x00"))  # response, IIN 0
    # A cold restart hidden behind link function 14 (not defined) and 0 (reset link states,
    # which carries no data).
    c.to_server(dnp3_frame(0xCE, 10, 1, b"\xc1\xc2\x0d"))
    c.to_server(dnp3_frame(0xC0, 10, 1, b"\xc2\xc3\x0d"))
    # An analog response with single and double floats (g30v5 1.1, g30v6 -1.5).
    c.to_client(dnp3_frame(0x44, 1, 10, b"\xc1\xc3\x81\x00\x00" + b"\x1e\x05\x00\x01\x01\x01" + struct.pack("<f", 1.1)
                           + b"\x1e\x06\x00\x02\x02\x01" + struct.pack("<d", -1.5)))
    write("dnp3-reversed-and-hidden-user-data.pcap", c.frames)


if __name__ == "__main__":
    fuzz_unknown_functions()
    reversed_connection()
    wild_sequence_numbers()
    dnp3_tricks()
