"""Starts moto's server on a free loopback port, prints the port, and serves until stdin
closes: when the test process that started it exits, the pipe closes and so does moto."""

import sys

from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
