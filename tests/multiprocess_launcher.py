"""Starts the workers of a multi-process run in a network namespace of their own.

`test_multiprocess.py` runs this module in new user, network and UTS
namespaces (`unshare --user --map-root-user --net --uts`), in which the
only network interface is loopback:

    python multiprocess_launcher.py OUT_DIR DEADLINE_S PROCESSES PORTS
    python multiprocess_launcher.py --check

The launcher brings `lo` up and names the host `localhost`, so that a
server listening on every interface (TensorFlow's gRPC server binds
0.0.0.0) or on the address of the host name (gloo) listens on loopback,
and only in this namespace. It then picks `PORTS` free ports on 127.0.0.1
and starts `PROCESSES` copies of `multiprocess_worker.py` as its children,
in its own process group, each logging to `OUT_DIR/process<ID>.log`. It
waits for them until `DEADLINE_S` seconds have passed, kills them if they
are still running then, and exits with 0 only if every worker exited with
0. `--check` prepares the namespace and exits: the test runs it first to
learn whether this machine lets it create one.
"""

import fcntl
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

# <linux/sockios.h> and <net/if.h>: read and write an interface's flags
# through a `struct ifreq` (a 16-byte name, then a short among 24 bytes).
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
IFREQ = "16sh22x"
#: Exit status of `--check` when the namespace may not be configured.
NOT_PERMITTED = 77


def interface_flags(sock, name):
    request = struct.pack(IFREQ, name.encode(), 0)
    return struct.unpack(IFREQ, fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]


def prepare_namespace():
    """Brings `lo` up and names the host `localhost`; refuses to go on if
    another interface is up (this process is not in a private namespace)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        others_up = [
            name
            for _, name in socket.if_nameindex()
            if name != "lo" and interface_flags(sock, name) & IFF_UP
        ]
        if others_up:
            sys.exit(
                f"refusing to start the workers: the interfaces {others_up} are "
                "up here, where only loopback may be; run this module under "
                "`unshare --user --map-root-user --net --uts`"
            )
        flags = interface_flags(sock, "lo") | IFF_UP
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack(IFREQ, b"lo", flags))
    socket.sethostname("localhost")


def free_ports(count):
    """`count` distinct ports free on 127.0.0.1 (bound together, then freed)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def run_workers(out_dir, deadline_s, processes, ports):
    """Runs the workers to the end or kills them at the deadline; returns
    whether every worker exited with 0."""
    addresses = [f"127.0.0.1:{port}" for port in free_ports(ports)]
    print(f"workers' addresses: {addresses}", flush=True)
    worker = Path(__file__).resolve().parent / "multiprocess_worker.py"
    deadline = time.monotonic() + deadline_s
    workers = []
    try:
        for process_id in range(processes):
            with open(out_dir / f"process{process_id}.log", "w") as log:
                workers.append(
                    subprocess.Popen(
                        [sys.executable, str(worker), str(process_id), str(out_dir)]
                        + addresses,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        for process in workers:
            process.wait(timeout=max(deadline - time.monotonic(), 0))
    except subprocess.TimeoutExpired:
        print(f"the workers ran past {deadline_s} s", flush=True)
    finally:
        for process in workers:
            process.kill()
            process.wait()
    for process_id, process in enumerate(workers):
        print(f"process {process_id} exited with {process.returncode}", flush=True)
    return [process.returncode for process in workers] == [0] * processes


def main(arguments):
    try:
        prepare_namespace()
    except PermissionError as error:
        print(f"cannot configure the network namespace: {error}", file=sys.stderr)
        sys.exit(NOT_PERMITTED)
    if arguments == ["--check"]:
        return
    out_dir, deadline_s, processes, ports = arguments
    succeeded = run_workers(
        Path(out_dir), float(deadline_s), int(processes), int(ports)
    )
    sys.exit(0 if succeeded else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
