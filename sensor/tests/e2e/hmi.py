"""An HMI polling a PLC: reads holding registers 0..9 (FC 3) every 500 ms, on one connection.

Usage: hmi.py HOST PORT. Prints one line per poll ("ok" or the error) on stdout. Runs
until killed.
"""

import sys
import time

from pymodbus.client import ModbusTcpClient


def read(client):
    try:  # pymodbus >= 3.10
        return client.read_holding_registers(0, count=10, device_id=1)
    except TypeError:  # older 3.x
        return client.read_holding_registers(0, count=10, slave=1)


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    client = ModbusTcpClient(host, port=port, timeout=1)
    next_poll = time.monotonic()
    while True:
        try:
            if not client.connected:
                client.connect()
            rr = read(client)
            print("error" if rr.isError() else "ok", flush=True)
        except Exception as e:  # keep polling: a missed poll is not the end of the HMI
            print(f"error {e}", flush=True)
        next_poll += 0.5
        time.sleep(max(0.0, next_poll - time.monotonic()))


if __name__ == "__main__":
    main()
