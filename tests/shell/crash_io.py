#!/usr/bin/env python3
"""Writer and verifier for tests/shell/crash_loop.sh.

Every 4 KiB block a write puts on the array is self-describing: a header
(magic, the write's id, the block's number) and filler derived from the
seed, the id and the block, so a read tells which write a block holds, or
that it holds none of them (torn, misplaced, stale garbage).

  write DEVICE LOG --seed S --rng R --first-id N --blocks B [--delay SEC]
      Write to DEVICE until an I/O error (the daemon killed under it),
      choices drawn from R, ids counted from N, contents from S:
      O_DIRECT writes, and batches of buffered writes closed by an
      fdatasync.  LOG gets "W id kind block count" before each write and
      "A id" once it is acknowledged (the O_DIRECT write returned; for a
      buffered one, the fdatasync after it), then "E errno call issued
      failed text" at the end: the call that failed, when it was issued
      and when it failed (seconds since the epoch).
      Nothing in LOG is on the array.

  verify DEVICE --state FILE --seed S --blocks B [--commit] LOG...
      Read DEVICE and check every block against the state (the version of
      each block the last verification found) and the logs written since:
      a block holds the last acknowledged write to it, or a write issued
      after that one that was never acknowledged.  --commit records what
      was found as the new state.  Prints "acked=A unacked=U" on success.
"""

import argparse
import errno
import hashlib
import mmap
import os
import random
import struct
import sys
import time
from array import array

BLOCK = 4096
MAGIC = b"MDFC"
HEAD = struct.Struct("<4sIQQ")  # magic, seed, write id, block
ZERO = bytes(BLOCK)


def block_data(seed, wid, blk):
    head = HEAD.pack(MAGIC, seed & 0xFFFFFFFF, wid, blk)
    fill = hashlib.blake2b(head, digest_size=64).digest()
    return (head + fill * (BLOCK // 64))[:BLOCK]


def write_data(seed, wid, blk, count):
    return b"".join(block_data(seed, wid, blk + i) for i in range(count))


def cmd_write(a):
    rng = random.Random(a.rng)
    log = open(a.log, "w", buffering=1)
    dfd = os.open(a.device, os.O_WRONLY | os.O_DIRECT)
    bfd = os.open(a.device, os.O_WRONLY)
    buf = mmap.mmap(-1, 64 * BLOCK)  # page aligned, for O_DIRECT
    wid = a.first_id
    log.write("R\n")
    if a.delay:
        time.sleep(a.delay)

    # The call under way, and when it was issued, for the "E" line.
    call = ["open", time.time()]

    def issue(name, f, *args):
        call[:] = [name, time.time()]
        return f(*args)

    def pick(most):
        # Mostly small writes, some large ones.
        n = min(most, int(rng.expovariate(1 / 6)) + 1)
        return rng.randrange(0, a.blocks - n + 1), n

    try:
        while True:
            r = rng.random()
            if r < 0.03:
                # An idle spell: long enough for safe mode to mark the
                # array clean, so that kills land around those updates too.
                time.sleep(rng.uniform(0.05, 0.5))
            elif r < 0.6:
                blk, n = pick(64)
                data = write_data(a.seed, wid, blk, n)
                buf[: len(data)] = data
                log.write("W %d d %d %d\n" % (wid, blk, n))
                done = issue("pwritev", os.pwritev, dfd, [memoryview(buf)[: len(data)]], blk * BLOCK)
                if done != len(data):
                    raise OSError(errno.EIO, "short O_DIRECT write: %d of %d" % (done, len(data)))
                log.write("A %d\n" % wid)
                wid += 1
            else:
                batch = []
                for _ in range(rng.randint(1, 6)):
                    blk, n = pick(32)
                    data = write_data(a.seed, wid, blk, n)
                    log.write("W %d b %d %d\n" % (wid, blk, n))
                    done = issue("pwrite", os.pwrite, bfd, data, blk * BLOCK)
                    if done != len(data):
                        raise OSError(errno.EIO, "short write: %d of %d" % (done, len(data)))
                    batch.append(wid)
                    wid += 1
                issue("fdatasync", os.fdatasync, bfd)
                for w in batch:
                    log.write("A %d\n" % w)
    except OSError as e:
        log.write("E %d %s %.6f %.6f %s\n" % (e.errno or 0, call[0], call[1], time.time(), e.strerror))
    log.close()


def load_logs(paths):
    """The writes of the logs in issue order, as (id, block, count, acked)."""
    writes = []
    for p in paths:
        acked = set()
        ws = []
        with open(p) as f:
            for line in f:
                w = line.split()
                if not w:
                    continue
                if w[0] == "W":
                    ws.append((int(w[1]), int(w[3]), int(w[4])))
                elif w[0] == "A":
                    acked.add(int(w[1]))
        writes += [(i, b, n, i in acked) for i, b, n in ws]
    return writes


def cmd_verify(a):
    state = array("Q")
    if os.path.exists(a.state):
        with open(a.state, "rb") as f:
            state.frombytes(f.read())
    if len(state) != a.blocks:
        state = array("Q", bytes(8 * a.blocks))
    # allowed[b]: the versions block b may hold, when more than state[b].
    allowed = {}
    acked_writes = unacked_writes = 0
    origin = {}
    for wid, blk, n, acked in load_logs(a.logs):
        if acked:
            acked_writes += 1
        else:
            unacked_writes += 1
        origin[wid] = (blk, n, acked)
        for b in range(blk, blk + n):
            if acked:
                allowed[b] = {wid}
            else:
                allowed.setdefault(b, {state[b]}).add(wid)
    found = array("Q", bytes(8 * a.blocks))
    bad = []
    with open(a.device, "rb", buffering=0) as f:
        b = 0
        while b < a.blocks:
            chunk = f.read(min(256, a.blocks - b) * BLOCK)
            if not chunk:
                bad.append((b, "short read: the device ends at block %d" % b))
                break
            for off in range(0, len(chunk) - BLOCK + 1, BLOCK):
                data = chunk[off : off + BLOCK]
                ok = allowed.get(b, {state[b]})
                if data == ZERO:
                    wid = 0
                else:
                    magic, seed, wid, blk = HEAD.unpack_from(data)
                    if magic != MAGIC or seed != a.seed & 0xFFFFFFFF or blk != b or data != block_data(seed, wid, blk):
                        what = "garbage"
                        if magic == MAGIC:
                            what = "write %d's block %d%s" % (
                                wid,
                                blk,
                                "" if blk != b else ", torn",
                            )
                        bad.append((b, "holds %s; wanted one of %s" % (what, sorted(ok))))
                        b += 1
                        continue
                if wid not in ok:
                    w = origin.get(wid)
                    seen = "write %d" % wid if wid else "zeros"
                    if w:
                        seen += " (%s, blocks %d+%d)" % (
                            "acknowledged" if w[2] else "never acknowledged",
                            w[0],
                            w[1],
                        )
                    bad.append((b, "holds %s; wanted one of %s" % (seen, sorted(ok))))
                found[b] = wid
                b += 1
    if bad:
        print("%d of %d blocks wrong:" % (len(bad), a.blocks), file=sys.stderr)
        for b, why in bad[:20]:
            print("  block %d (byte %d): %s" % (b, b * BLOCK, why), file=sys.stderr)
        sys.exit(1)
    if a.commit:
        tmp = a.state + ".new"
        with open(tmp, "wb") as f:
            f.write(found.tobytes())
        os.replace(tmp, a.state)
    print("acked=%d unacked=%d" % (acked_writes, unacked_writes))


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("write")
    w.add_argument("device")
    w.add_argument("log")
    w.add_argument("--seed", type=int, required=True)
    w.add_argument("--rng", type=int, required=True)
    w.add_argument("--first-id", type=int, required=True)
    w.add_argument("--blocks", type=int, required=True)
    w.add_argument("--delay", type=float, default=0)
    v = sub.add_parser("verify")
    v.add_argument("device")
    v.add_argument("logs", nargs="*")
    v.add_argument("--state", required=True)
    v.add_argument("--seed", type=int, required=True)
    v.add_argument("--blocks", type=int, required=True)
    v.add_argument("--commit", action="store_true")
    a = ap.parse_args()
    {"write": cmd_write, "verify": cmd_verify}[a.cmd](a)


if __name__ == "__main__":
    main()
