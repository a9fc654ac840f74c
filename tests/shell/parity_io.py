#!/usr/bin/env python3
"""Seeded writes into an array's data file, applied to a model of its
contents as well: random offsets and lengths (any alignment), then
concurrent writers interleaving 4 KiB blocks of one region, so that they
share stripes.  Prints the sha256 the data must now have.

    parity_io.py DATA SEED [WRITES]
"""
import hashlib
import os
import random
import sys
import threading

path, seed = sys.argv[1], int(sys.argv[2])
writes = int(sys.argv[3]) if len(sys.argv) > 3 else 200
rng = random.Random(seed)
fd = os.open(path, os.O_RDWR)
size = os.fstat(fd).st_size
model = bytearray(os.pread(fd, size, 0))
assert len(model) == size

for _ in range(writes):
    length = rng.choice([1, 511, 512, 4096, 5000, 65536, 131072 + 77, 300000])
    length = min(length, size)
    off = rng.randrange(0, size - length + 1)
    if rng.random() < 0.5:
        off -= off % 512
    buf = rng.randbytes(length)
    assert os.pwrite(fd, buf, off) == length
    model[off:off + length] = buf

# Concurrent writers: thread t writes the blocks k of the region with
# k % THREADS == t, all at once; every stripe of the region sees them all.
THREADS, BLOCK = 4, 4096
region = min(size, 2 << 20)
start = rng.randrange(0, size - region + 1) // BLOCK * BLOCK
plans = [[] for _ in range(THREADS)]
for k in range(region // BLOCK):
    buf = rng.randbytes(BLOCK)
    plans[k % THREADS].append((start + k * BLOCK, buf))
    model[start + k * BLOCK:start + (k + 1) * BLOCK] = buf
errors = []


def run(plan):
    try:
        for off, buf in plan:
            assert os.pwrite(fd, buf, off) == len(buf)
    except Exception as e:  # reported below
        errors.append(e)


threads = [threading.Thread(target=run, args=(p,)) for p in plans]
for t in threads:
    t.start()
for t in threads:
    t.join()
if errors:
    sys.exit("write failed: %s" % errors[0])
os.fsync(fd)
os.close(fd)
print(hashlib.sha256(model).hexdigest())
