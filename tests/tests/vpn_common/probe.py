"""Echo servers and probes for the VPN end-to-end tests, run inside network namespaces.

serve TCP_PORTS UDP_PORTS          echo on every address (comma-separated port lists)
tcp HOST PORT [BIND]               one echo over TCP: OK, REFUSED, UNREACH, TIMEOUT or ERR:...
udp HOST PORT [BIND]               one echo over UDP: same answers
stream HOST PORT SECONDS           TCP echo of 1 KiB every 20 ms; prints `ok TIME` per echo and
                                   `stop TIME REASON` when it fails (or time is up)
"""
import errno
import socket
import sys
import threading
import time


def tcp_echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    while True:
        c, _ = s.accept()
        threading.Thread(target=pump, args=(c,), daemon=True).start()


def pump(c):
    try:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)
    except OSError:
        return
    finally:
        c.close()


def udp_echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    while True:
        d, a = s.recvfrom(65536)
        s.sendto(d, a)


def classify(e):
    if isinstance(e, socket.timeout):
        return "TIMEOUT"
    if e.errno == errno.ECONNREFUSED or e.errno == errno.ECONNRESET:
        return "REFUSED"
    if e.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES):
        return "UNREACH"
    return "ERR:%s" % e


def probe(kind, host, port, bind=None):
    t = socket.SOCK_STREAM if kind == "tcp" else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, t)
    s.settimeout(3)
    try:
        if bind:
            s.bind((bind, 0))
        s.connect((host, port))
        s.send(b"ping")
        d = s.recv(100)
        return "OK" if d == b"ping" else "ERR:bad echo %r" % d
    except OSError as e:
        return classify(e)
    finally:
        s.close()


def stream(host, port, seconds):
    s = socket.create_connection((host, port), timeout=3)
    s.settimeout(0.25)
    end = time.time() + seconds
    block = b"x" * 1024
    while time.time() < end:
        try:
            s.sendall(block)
            got = 0
            while got < len(block):
                d = s.recv(len(block) - got)
                if not d:
                    print("stop %.3f closed" % time.time(), flush=True)
                    return
                got += len(d)
            print("ok %.3f" % time.time(), flush=True)
        except OSError as e:
            print("stop %.3f %s" % (time.time(), classify(e)), flush=True)
            return
        time.sleep(0.02)
    print("stop %.3f done" % time.time(), flush=True)


def main():
    cmd = sys.argv[1]
    if cmd == "serve":
        tcp = [int(p) for p in sys.argv[2].split(",") if p]
        udp = [int(p) for p in sys.argv[3].split(",") if p]
        for p in tcp:
            threading.Thread(target=tcp_echo, args=(p,), daemon=True).start()
        for p in udp:
            threading.Thread(target=udp_echo, args=(p,), daemon=True).start()
        print("ready", flush=True)
        while True:
            time.sleep(3600)
    elif cmd in ("tcp", "udp"):
        bind = sys.argv[4] if len(sys.argv) > 4 else None
        print(probe(cmd, sys.argv[2], int(sys.argv[3]), bind))
    elif cmd == "stream":
        stream(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))


main()
