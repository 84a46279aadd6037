"""A Modbus/TCP server standing in for a PLC: holding registers 0..99 on unit 1.

Usage: plc.py HOST PORT. Prints "ready" on stdout once listening. Runs until killed.
Works with pymodbus 3.x before and after the slave -> device rename (3.10).
"""

import socket
import sys
import threading
import time

from pymodbus.datastore import ModbusSequentialDataBlock, ModbusServerContext

try:  # pymodbus >= 3.10
    from pymodbus.datastore import ModbusDeviceContext as DeviceContext
except ImportError:  # older 3.x
    from pymodbus.datastore import ModbusSlaveContext as DeviceContext
from pymodbus.server import StartTcpServer


def announce_when_listening(host, port):
    """Prints "ready" once a TCP connect to the server succeeds (bounded: 10 s)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                print("ready", flush=True)
                return
        except OSError:
            time.sleep(0.05)
    print("not listening after 10 s", file=sys.stderr, flush=True)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    # Registers 0..99 with distinct values. pymodbus blocks start at 1: request address 0
    # is block address 1 (3.16 subtracts one; older 3.x add one to the request address).
    block = ModbusSequentialDataBlock(1, list(range(100, 200)))
    device = DeviceContext(hr=block)
    try:  # pymodbus >= 3.10
        context = ModbusServerContext(devices=device, single=True)
    except TypeError:  # older 3.x
        context = ModbusServerContext(slaves=device, single=True)
    threading.Thread(target=announce_when_listening, args=(host, port), daemon=True).start()
    StartTcpServer(context=context, address=(host, port))


if __name__ == "__main__":
    main()
