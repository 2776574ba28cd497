#!/usr/bin/env python3
"""Crafted IPv4 packets for latchkey's end-to-end tests (raw socket, IP_HDRINCL).

  pkt.py tcp   SRC DST PORT [FLAGS] [COUNT]   FLAGS like S, SA, F, A (default S)
  pkt.py udp   SRC DST PORT [COUNT]
  pkt.py sweep SRC DST FROM TO [FLAGS|udp]   one probe per port, in the order FROM..TO: TCP
                                              with FLAGS (default S), or UDP
  pkt.py flood NET DST PORT COUNT             SYNs from COUNT distinct sources in NET/15
  pkt.py noise SRC DST COUNT                  non-candidate traffic: UDP to port 53, ACKs
  pkt.py tun   NAME                           create tun device NAME (raw IP, no link header)
                                              and inject the packets read from stdin as
                                              lines "tcp SRC DST PORT [FLAGS]" (IPv4 or IPv6)

Only for the test namespaces: sources must be 192.0.2.0/24 or 198.18.0.0/15.
"""
import ipaddress
import socket
import struct
import sys

FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}
ALLOWED = [ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("198.18.0.0/15"),
           ipaddress.ip_network("2001:db8::/32")]


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xFFFF)
    s += s >> 16
    return ~s & 0xFFFF


def ip_header(src, dst, proto, payload_len, ident):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident & 0xFFFF, 0, 64,
                    proto, 0, src, dst)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:]


def tcp(src, dst, sport, dport, flags, seq=1):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 1024, 0, 0)
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 6, len(hdr))
    hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
    return ip_header(src, dst, 6, len(hdr), seq) + hdr


def tcp6(src, dst, sport, dport, flags, seq=1):
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0, 5 << 4, flags, 1024, 0, 0)
    pseudo = struct.pack("!16s16sI3xB", src, dst, len(hdr), 6)
    hdr = hdr[:16] + struct.pack("!H", csum(pseudo + hdr)) + hdr[18:]
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(hdr), 6, 64, src, dst)
    return ip6 + hdr


def tun(name):
    import fcntl
    import os
    TUNSETIFF, IFF_TUN, IFF_NO_PI = 0x400454CA, 0x0001, 0x1000
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    print("ready", flush=True)
    for line in sys.stdin:
        f = line.split()
        if not f or f[0] != "tcp":
            continue
        src, dst, port = f[1], f[2], int(f[3])
        check_src(src)
        flags = sum(FLAGS[c] for c in (f[4] if len(f) > 4 else "S"))
        if ":" in src:
            os.write(fd, tcp6(addr(src), addr(dst), 40000, port, flags))
        else:
            os.write(fd, tcp(addr(src), addr(dst), 40000, port, flags))


def udp(src, dst, sport, dport, data=b"\0"):
    ln = 8 + len(data)
    hdr = struct.pack("!HHHH", sport, dport, ln, 0)
    pseudo = struct.pack("!4s4sBBH", src, dst, 0, 17, ln)
    c = csum(pseudo + hdr + data) or 0xFFFF
    hdr = hdr[:6] + struct.pack("!H", c)
    return ip_header(src, dst, 17, ln, sport) + hdr + data


def addr(s):
    ip = ipaddress.ip_address(s)
    return ip.packed


def check_src(s):
    ip = ipaddress.ip_address(s)
    if not any(ip in n for n in ALLOWED):
        sys.exit("pkt.py: refusing source %s outside the test ranges" % s)


def main():
    if sys.argv[1] == "tun":
        return tun(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
    cmd, args = sys.argv[1], sys.argv[2:]

    def send(pkt, dst):
        sock.sendto(pkt, (dst, 0))

    if cmd == "tcp":
        src, dst, port = args[0], args[1], int(args[2])
        check_src(src)
        flags = sum(FLAGS[c] for c in (args[3] if len(args) > 3 else "S"))
        for _ in range(int(args[4]) if len(args) > 4 else 1):
            send(tcp(addr(src), addr(dst), 40000, port, flags), dst)
    elif cmd == "udp":
        src, dst, port = args[0], args[1], int(args[2])
        check_src(src)
        for _ in range(int(args[3]) if len(args) > 3 else 1):
            send(udp(addr(src), addr(dst), 40000, port), dst)
    elif cmd == "sweep":
        src, dst, lo, hi = args[0], args[1], int(args[2]), int(args[3])
        kind = args[4] if len(args) > 4 else "S"
        check_src(src)
        step = 1 if hi >= lo else -1
        for port in range(lo, hi + step, step):
            if kind == "udp":
                send(udp(addr(src), addr(dst), 40000, port), dst)
            else:
                flags = sum(FLAGS[c] for c in kind)
                send(tcp(addr(src), addr(dst), 40000, port, flags), dst)
    elif cmd == "flood":
        net, dst, port, count = ipaddress.ip_network(args[0]), args[1], int(args[2]), int(args[3])
        check_src(str(net.network_address))
        base = int(net.network_address)
        d = addr(dst)
        for i in range(count):
            src = struct.pack("!I", base + 1 + (i % (net.num_addresses - 2)))
            send(tcp(src, d, 40000 + i % 20000, port, FLAGS["S"], seq=i + 1), dst)
    elif cmd == "noise":
        src, dst, count = args[0], args[1], int(args[2])
        check_src(src)
        s, d = addr(src), addr(dst)
        for i in range(count):
            if i % 2:
                send(udp(s, d, 5353, 53), dst)
            else:
                send(tcp(s, d, 50000, 40000 + i % 1000, FLAGS["A"]), dst)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
