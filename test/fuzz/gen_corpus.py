#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0 OR BSD-3-Clause
"""Write the seed inputs of test/fuzz/corpus/ (run from anywhere).

Seeds are a few well-formed inputs per target, in each target's input
layout (see the comment at the top of test/fuzz/fuzz_*.c), so the fuzzer
starts from sessions and rings that work. fuzz_canfmt's seeds are plain
text written by hand. Crash inputs are added to the corpus by hand next to
these and are never regenerated.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- fuzz_msg: header (request, flags, size), control byte, payload ----
def msg(req, payload=b"", flags=1, ctl=0):
    return struct.pack("<III", req, flags, len(payload)) + bytes([ctl]) + payload


def u64(v):
    return struct.pack("<Q", v)


def state(i, n):
    return struct.pack("<II", i, n)


def region(gpa, size, uaddr, off=0):
    return struct.pack("<QQQQ", gpa, size, uaddr, off)


UA = 0x7F0000000000
PROTO = (1 << 0) | (1 << 3) | (1 << 5) | (1 << 9) | (1 << 13) | (1 << 15)
setup = (msg(1) + msg(2, u64((1 << 32) | (1 << 30) | (1 << 28) | (1 << 29)))
         + msg(15) + msg(16, u64(PROTO)) + msg(3))
ring0 = (msg(8, state(0, 16))
         + msg(9, struct.pack("<IIQQQQ", 0, 0, UA, UA + 0x200, UA + 0x100, 0))
         + msg(10, state(0, 0)) + msg(13, u64(0)) + msg(12, u64(0))
         + msg(18, state(0, 1)))
write("fuzz_msg", "session", setup
      + msg(5, struct.pack("<II", 1, 0) + region(0, 0x10000, UA)) + ring0
      + msg(11, state(0, 0)) + msg(17) + msg(24, struct.pack("<III", 0, 8, 0) + bytes(8)))
write("fuzz_msg", "slots", setup + msg(36) + msg(37, u64(0) + region(0, 0x8000, UA))
      + msg(37, u64(0) + region(0x8000, 0x8000, UA + 0x8000, 0x1000)) + ring0
      + msg(38, u64(0) + region(0, 0x8000, UA)) + msg(21) + msg(34))
write("fuzz_msg", "need-reply", setup + msg(8, state(1, 8), flags=9)
      + msg(25, struct.pack("<III", 0, 2, 0) + bytes(2), flags=9) + msg(4))
write("fuzz_msg", "bad-fds", setup + msg(13, u64(0), ctl=0x82) + msg(99) + msg(1, flags=2))

# ---- fuzz_vq: mode, how, 3 offsets, then guest memory ----
GPA0 = 0x10000


def desc(addr, ln, flags, nxt):
    return struct.pack("<QIHH", addr, ln, flags, nxt)


def vq_input(mode, descs, avail_heads, extra=b"", extra_at=0x800, num=4):
    mem = bytearray(0x1000)
    table = b"".join(descs)
    mem[0:len(table)] = table
    avail = 16 * num
    mem[avail:avail + 4] = struct.pack("<HH", 0, len(avail_heads))
    for i, h in enumerate(avail_heads):
        mem[avail + 4 + 2 * i:avail + 6 + 2 * i] = struct.pack("<H", h)
    mem[extra_at:extra_at + len(extra)] = extra
    return bytes([mode, 0]) + bytes(6) + bytes(mem)


NEXT, WRITE, INDIRECT = 1, 2, 4
write("fuzz_vq", "direct", vq_input(2, [desc(GPA0 + 0x900, 16, NEXT, 1),
                                        desc(GPA0 + 0xA00, 32, WRITE, 0)], [0]))
write("fuzz_vq", "indirect", vq_input(2 | 0x10, [desc(GPA0 + 0x800, 32, INDIRECT, 0)], [0],
                                      desc(GPA0 + 0x900, 8, NEXT, 1)
                                      + desc(GPA0 + 0xA00, 8, WRITE, 0)))
write("fuzz_vq", "two-regions", vq_input(2 | 0x40 | 0x20, [
    desc(GPA0 + 0x3F00, 0x200, 0, 0), desc(GPA0 + 0x4000, 16, WRITE, 0)], [0, 1]))
write("fuzz_vq", "loop", vq_input(2, [desc(GPA0 + 0x900, 16, NEXT, 1),
                                      desc(GPA0 + 0x900, 16, NEXT, 0)], [0]))

# ---- fuzz_device: features, backlog, then ops ----
def seg(data=b"", ln=None, w=False):
    ln = len(data) if ln is None else ln
    return bytes([ln, 1 if w else 0]) + (b"" if w else data[:24])


def chain(segs, indirect=False):
    return bytes([((len(segs) - 1) << 1) | (1 if indirect else 0)]) + b"".join(segs)


def can_hdr(mtype, length, flags, can_id):
    return struct.pack("<HHBBHII", mtype, length, 0, 0, 0, flags, can_id)


def cframe(cid, flags, data):
    return struct.pack("<IBB", cid, flags, len(data)) + data.ljust(66, b"\0")


start = bytes([1]) + chain([seg(b"\x01\x02"), seg(ln=1, w=True)])
stop = bytes([1]) + chain([seg(b"\x02\x02"), seg(ln=1, w=True)])
tx = bytes([0]) + chain([seg(can_hdr(1, 8, 0, 0x123) + bytes(range(8))), seg(ln=1, w=True)])
txfd = bytes([0]) + chain([seg(can_hdr(1, 12, 0x4000, 0x1234567) + bytes(8), ln=28),
                           seg(ln=1, w=True)], indirect=True)
rxbuf = bytes([2]) + chain([seg(ln=80, w=True)])
rx = bytes([4, 0]) + cframe(0x123, 0, b"\x11\x22")
write("fuzz_device", "tx-rx", bytes([0x0F | 0x10, 4]) + start + tx + txfd + rxbuf + rxbuf + rx
      + bytes([5, 0, 8, 0x10, 0x00]) + stop)
write("fuzz_device", "late-ack", bytes([0x0F, 2]) + start + tx + bytes([8, 0xFF, 0x7F]) + tx
      + bytes([5, 0]) + bytes([6, 7]) + start + rxbuf + rx)
write("fuzz_device", "busy-port", bytes([0x05, 1]) + bytes([9, 0x0F]) + start + bytes([9, 0])
      + start + bytes([9, 2]) + tx + rx + rx + rxbuf + bytes([10, 1, 12, 0x07, 13, 0x10]))

# ---- fuzz_canfmt: text ----
for name, text in [("std", "123#DEADBEEF"), ("ext", "12345678#00"), ("dots", "123#11.22.33"),
                   ("rtr", "123#R5"), ("fd", "123##1AABBCCDDEEFF0011223344"),
                   ("empty", "7FF#"), ("fdflags", "1FFFFFFF##7"), ("rawdlc", "123#_9")]:
    write("fuzz_canfmt", name, text.encode())

# ---- fuzz_session: session byte, then steps (op byte and operands) ----
(S_MSG, S_SETUP, S_POST, S_DESC, S_AVAIL, S_POKE, S_KICK, S_BUS, S_CONN,
 S_TURNS, S_SHRINK, S_CTRL, S_CLOCK, S_SETTLE) = range(14)
DEV1 = 0x40  # op byte bit 6: the step acts on device 1
SESSION_MORE = 0x80  # a second session byte follows: bit rates
BR_10K, BR_20K, BR_50K, BR_125K = 1, 2, 3, 4
(FK_MEMFD, FK_MEMFD_SIZED, FK_EVENTFD, FK_EVENTFD_SEM, FK_PIPE_R, FK_PIPE_R_HUP,
 FK_PIPE_W, FK_PIPE_W_FULL, FK_PIPE_W_HUP, FK_STREAM, FK_STREAM_HUP, FK_DGRAM,
 FK_STREAM_LOWAT, FK_DEVNULL, FK_CLOSED) = range(15)
SESSION_FD = 0x02  # offer CAN FD, so the handshake may take it
DROP_LATE_ACK = 0x10


def s_msg(req, payload=b"", mode=0, kinds=None):
    """One message; payload as long as the harness takes for req."""
    if kinds is not None:
        mode |= (len(kinds) + 1) << 4
    return bytes([S_MSG, req, mode]) + payload + bytes(kinds or [])


def s_handshake(drop=DROP_LATE_ACK):
    return bytes([S_SETUP, 0, drop])


def s_memory(pages=24, where=0, kind=FK_MEMFD):
    return bytes([S_SETUP, 1, pages, where, kind])  # 32 KiB + 24 pages = 128 KiB


def s_ring(q, lognum, kick):
    return bytes([S_SETUP, 2, (lognum << 2) | q, kick])


def s_rings(lognum=3):
    return bytes([S_SETUP, 3, lognum << 2])


def s_seg(data=b"", ln=None, w=False):
    ln = len(data) if ln is None else ln
    return bytes([ln, 1 if w else 0]) + (b"" if w else data[:24].ljust(min(ln, 24), b"\0"))


def s_post(q, segs, kick=True, indirect=False):
    qb = q | (0x80 if kick else 0) | (0x40 if indirect else 0)
    return bytes([S_POST, qb, len(segs) - 1]) + b"".join(segs)


def s_frame(cid, data, flags=0, typ=0):
    return bytes([typ]) + struct.pack("<IBB", cid, flags, len(data)) + data


def s_bus(events):
    return bytes([S_BUS, len(events) - 1]) + b"".join(events)


s_start = s_post(2, [s_seg(b"\x01\x02"), s_seg(ln=1, w=True)])
s_tx = s_post(0, [s_seg(can_hdr(1, 8, 0, 0x123) + bytes(range(8))), s_seg(ln=1, w=True)])
s_rxbuf = s_post(1, [s_seg(ln=80, w=True)])
s_up = bytes([SESSION_FD]) + s_handshake() + s_memory() + s_rings()
write("fuzz_session", "traffic", s_up + s_start + s_rxbuf + s_rxbuf + s_tx
      + s_bus([s_frame(0x123, b"\x11\x22"), s_frame(0x7ff, b"")]) + bytes([S_TURNS, 1]))
# Kick fds of other kinds: a pipe with a byte waiting, a socket below its
# low-water mark, a semaphore eventfd; a full pipe as call fd.
write("fuzz_session", "fd-kinds", bytes([SESSION_FD]) + s_handshake() + s_memory()
      + s_ring(0, 3, FK_PIPE_R | 0x20) + s_ring(1, 2, FK_STREAM_LOWAT | 0x10)
      + s_ring(2, 3, FK_EVENTFD_SEM | 0x10)
      + s_msg(13, u64(0), kinds=[FK_PIPE_W_FULL]) + s_start + s_tx
      + bytes([S_KICK, 3, S_KICK, 0]) + s_ring(0, 3, FK_PIPE_R_HUP)
      + s_msg(14, u64(1), kinds=[FK_CLOSED]) + s_msg(21, kinds=[FK_DGRAM]))
# A guest that loops descriptors, jumps its avail index and scribbles on used.
write("fuzz_session", "bad-guest", s_up + s_start
      + bytes([S_DESC, 0, 0, 0x10]) + struct.pack("<H", 0x6000) + bytes([16, 0])
      + bytes([S_DESC, 0, 1, 0x10]) + struct.pack("<H", 0x6000) + bytes([16, 1])
      + bytes([S_AVAIL, 0, 0]) + struct.pack("<H", 0) + bytes([S_KICK, 0])
      + bytes([S_AVAIL, 1, 1]) + struct.pack("<H", 0x8000) + bytes([S_KICK, 1])
      + bytes([S_POKE, 0x80 | (2 << 3) | (2 << 1)]) + struct.pack("<H", 2) + bytes([1, 0xff, 0xff])
      + s_post(0, [s_seg(can_hdr(1, 64, 0x4000, 0x1234567) + bytes(8), ln=80),
                   s_seg(ln=1, w=True)], indirect=True) + s_tx)
# The connection: a header with fds and no payload, replies nobody reads, a
# hang-up and a new frontend, garbage, a half-closed socket.
write("fuzz_session", "conn", bytes([SESSION_FD | 0x04]) + s_handshake() + s_memory()
      + bytes([S_CONN, 2]) + s_msg(24, struct.pack("<III", 0, 8, 0) + bytes(8)) * 6
      + bytes([S_CONN, 2, S_CONN, 1, 2]) + struct.pack("<III", 5, 1, 40)
      + bytes([FK_MEMFD, FK_EVENTFD])
      + bytes([S_CONN, 3]) + s_handshake() + bytes([S_CONN, 0, 5]) + b"\x01\0\0\0\x01"
      + s_handshake() + bytes([S_CONN, 4]))
# LATE_TX_ACK with 1 ms timeouts: one frame is echoed, one times out.
write("fuzz_session", "late-ack", bytes([SESSION_FD | 0x08]) + s_handshake(0) + s_memory()
      + s_rings() + s_start + s_tx + s_bus([bytes([0x81])]) + s_tx
      + bytes([S_CONN, 5, S_TURNS, 0]) + s_bus([bytes([2]), bytes([3])]) + s_rxbuf)
# Memory slots: regions added and removed while the rings run.
write("fuzz_session", "mem-slots", bytes([SESSION_FD]) + s_handshake() + s_memory()
      + s_rings() + s_start + s_msg(37, u64(0) + region(0x100000, 0x8000, UA + 0x100000))
      + s_msg(37, u64(0) + region(0x200000, 0x4000, UA + 0x200000, 0x1000))
      + s_tx + s_msg(38, u64(0) + region(0, 0x20000, UA))
      + s_msg(38, u64(0) + region(0x100000, 0x8000, UA + 0x100000)) + s_tx)
# A memfd of one page for a 128 KiB region, rings beyond its end: the
# backend must refuse it by its size (SIGBUS without the check).
write("fuzz_session", "short-memfd", bytes([SESSION_FD | 0x01]) + s_handshake()
      + s_memory(kind=FK_MEMFD_SIZED | 0x10) + s_rings() + s_start + s_tx)
# An eager guest: a full 256-entry TX ring, each chain reposted as it is
# sent, so only the device's budget gives the loop back.
write("fuzz_session", "eager", bytes([SESSION_FD | 0x40]) + s_handshake() + s_memory(pages=56)
      + s_rings(lognum=8) + s_start + s_tx * 8 + bytes([S_AVAIL, 0, 1]) + struct.pack("<H", 256)
      + bytes([S_KICK, 0, S_TURNS, 3, S_TURNS, 3]) + s_bus([s_frame(0x42, b"\x01")]))
# The frontend truncates guest memory under running rings, then a kick and
# a frame from the bus make the device touch it: SIGBUS, caught, frontend
# dropped, the next one served.
write("fuzz_session", "shrink", s_up + s_start + s_rxbuf + s_tx + bytes([S_SHRINK, 0, 0])
      + bytes([S_KICK, 0]) + s_bus([s_frame(0x55, b"\x01")]) + bytes([S_TURNS, 2]))


# ---- fuzz_session, two devices, pacing, controller state ----
def dev1(*steps):
    """The steps, on device 1 (each step built on its own)."""
    return b"".join(bytes([st[0] | DEV1]) + st[1:] for st in steps)


def s_ctrl(stop, kick=True):
    return bytes([S_CTRL, (1 if stop else 0) | (0 if kick else 2)])


def s_clock(ms):
    """Move the clock about ms (the op's coarse steps)."""
    for shift in (0, 3, 6, 9):
        if ms >> shift < 64:
            return bytes([S_CLOCK, ((shift // 3) << 6) | (ms >> shift)])
    return bytes([S_CLOCK, 0xff])


def s_txf(cid, n=8, indirect=True, kick=True):
    fl = 0x4000 if n > 8 else 0  # CAN FD
    return s_post(0, [s_seg(can_hdr(1, n, fl, cid) + bytes(range(n)), ln=16 + n),
                      s_seg(ln=1, w=True)],
                  indirect=indirect, kick=kick)


def s_echo(back):
    """A TX_DONE echo of the frame sent `back` frames before the last one."""
    return bytes([0x81 | (back << 4)])


def up(drop=DROP_LATE_ACK, lognum=5):
    return [s_handshake(drop), s_memory(pages=40), s_rings(lognum)]


def sess(byte2, *steps):
    return bytes([SESSION_FD | SESSION_MORE, byte2]) + b"".join(steps)


# Both devices up and busy in one loop, frames both ways, then quiet.
write("fuzz_session", "two-devices", sess(0, *up(), *[dev1(x) for x in up()],
      s_start, dev1(s_start), s_rxbuf, dev1(s_rxbuf), s_txf(0x100), dev1(s_txf(0x200)),
      s_bus([s_frame(0x11, b"\x01")]), dev1(s_bus([s_frame(0x22, b"\x02\x03")])),
      bytes([S_TURNS, 1]), bytes([S_SETTLE])))
# Issue 19 item 9: --bitrate=10k, frames waiting for bus time, STOP, START:
# every request completes, the next frame too, none sent from before STOP.
write("fuzz_session", "paced-stop-start", sess(BR_10K | (BR_10K << 3), *up(),
      *[dev1(x) for x in up()], s_start, dev1(s_start),
      *[s_txf(0x300 + i) for i in range(6)], dev1(s_txf(0x400)), s_ctrl(True), s_ctrl(False),
      s_txf(0x310), s_clock(20), dev1(s_clock(5)), s_txf(0x311), bytes([S_SETTLE]),
      s_ctrl(True), s_clock(400), s_ctrl(False), s_txf(0x312)))
# Bus-off while paced frames wait (and LATE_TX_ACK echoes pend), a restart
# on the bus, START again; device 1 runs on meanwhile.
write("fuzz_session", "paced-busoff", sess(BR_20K | (BR_50K << 3), *up(0),
      *[dev1(x) for x in up(0)], s_start, dev1(s_start),
      *[s_txf(0x500 + i, 64) for i in range(5)], dev1(s_txf(0x600)),
      s_bus([s_echo(0)]), s_bus([bytes([2])]), s_txf(0x510), s_bus([bytes([3])]),
      s_clock(30), s_start, s_txf(0x511), dev1(s_bus([s_echo(0)])), s_clock(200),
      s_bus([s_echo(0)]), bytes([S_SETTLE])))
# Issue 19 item 8: a burst under pacing with LATE_TX_ACK, echoes as the bus
# would send them: each completes OK once its slot is over.
write("fuzz_session", "paced-late-ack", sess(BR_20K | 0x40, *up(0),
      s_start, *[s_txf(0x700 + i) for i in range(10)], s_clock(8),
      s_bus([s_echo(k) for k in range(7, -1, -1)]), s_clock(30),
      s_bus([s_echo(1), s_echo(0)]), s_clock(120), bytes([S_SETTLE])))
# Device 0 driven hostile (loops, a jumped avail index, scribbles, a raw
# message), device 1 paced and well-formed beside it, stopped and started.
write("fuzz_session", "hostile-and-honest", sess(BR_125K << 3, *up(), *[dev1(x) for x in up()],
      s_start, dev1(s_start),
      bytes([S_DESC, 0, 0, 0x10]) + struct.pack("<H", 0x6000) + bytes([16, 0]),
      bytes([S_AVAIL, 0, 1]) + struct.pack("<H", 0x4000), bytes([S_KICK, 0]),
      dev1(*[s_txf(0x80 + i) for i in range(8)]), dev1(s_ctrl(True)),
      bytes([S_POKE, 0x80 | (2 << 3)]) + struct.pack("<H", 2) + bytes([1, 0xff, 0xff]),
      dev1(s_ctrl(False), s_txf(0x90), s_clock(5)), s_msg(8, state(0, 4)),
      bytes([S_KICK, 3]), dev1(s_rxbuf), s_bus([s_frame(0x42, b"\x01")]),
      dev1(s_bus([s_frame(0x43, b"\x02")])), bytes([S_SETTLE])))
# A guest that kicks only when the device asks (EVENT_IDX): frames posted
# without kicks while paced frames wait, a STOP and a START between them.
write("fuzz_session", "paced-no-kick", sess(BR_10K, *up(), s_start,
      *[s_txf(0x20 + i, kick=(i == 0)) for i in range(6)], s_clock(10),
      s_ctrl(True, kick=True), s_txf(0x30, kick=False), s_ctrl(False),
      *[s_txf(0x40 + i, kick=False) for i in range(4)], s_clock(50), bytes([S_TURNS, 3]),
      bytes([S_SETTLE])))
