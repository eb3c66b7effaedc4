#!/usr/bin/env python3
"""Where jobfs's Redis time goes on one run of the round-trip shape
(tests/bench/redis.sh profile): three tables in markdown.

  redis_profile.py N CPU_US COMMANDSTATS SLOWLOG_JSON MONITOR PREFIX

N jobs; CPU_US Redis CPU per job (INFO cpu) of the run that gave
COMMANDSTATS (INFO commandstats after CONFIG RESETSTAT) and SLOWLOG_JSON
(redis-cli --json SLOWLOG GET, slowlog-log-slower-than 0: every top-level
command with its duration); MONITOR is redis-cli MONITOR of a second run of
the same shape, N jobs too (its inner commands, "[0 lua]" lines, follow the
FCALL that made them).
"""
import collections
import json
import re
import sys


def main():
    n = int(sys.argv[1])
    cpu_us = float(sys.argv[2])
    stats, slow, mon = sys.argv[3], sys.argv[4], sys.argv[5]

    # By command: INFO commandstats.
    rows = []
    for line in open(stats):
        m = re.match(r'cmdstat_([^:]+):calls=(\d+),usec=(\d+)', line.strip())
        if m and m.group(1) not in ('info', 'config|resetstat', 'slowlog|get'):
            rows.append((m.group(1), int(m.group(2)), int(m.group(3))))
    rows.sort(key=lambda r: -r[1])
    total = sum(r[1] for r in rows)
    top = sum(r[1] for r in rows if r[0] in ('fcall', 'evalsha', 'eval'))
    print(f'By command (INFO commandstats over {n} round trips; Redis CPU '
          f'{cpu_us:.1f} µs per job from INFO cpu): {total / n:.2f} commands per job, '
          f'{top / n:.2f} of them FCALLs, {(total - top) / n:.2f} run inside them or '
          'alone. An FCALL\'s µs include those of the commands it runs.')
    fus = sum(r[2] for r in rows if r[0] == 'fcall') / n
    cus = sum(r[2] for r in rows if r[0] != 'fcall') / n
    print(f'The commands themselves (all but FCALL) took {cus:.1f} µs per job, the '
          f'FCALLs {fus:.1f} µs including them: {fus - cus:.1f} µs per job, about '
          f'{(fus - cus) * n / max(1, total - top):.1f} µs per command, are the '
          'functions\' own cost (Lua, redis.call) beyond the commands they run.')
    print()
    print('| command | calls per job | µs per call | µs per job |')
    print('|---|---|---|---|')
    for name, calls, usec in rows:
        print(f'| {name.upper()} | {calls / n:.2f} | {usec / calls:.2f} | {usec / n:.2f} |')
    print()

    # By function: SLOWLOG durations of each FCALL (the inner commands it
    # also lists are counted by MONITOR instead).
    dur = collections.defaultdict(list)
    for e in json.load(open(slow)):
        args = e[3]
        if args and args[0].lower() == 'fcall' and len(args) > 1:
            dur[args[1]].append(e[2])
    dtotal = sum(sum(d) for d in dur.values()) or 1

    # Inner commands of each function: MONITOR.
    inner = collections.defaultdict(collections.Counter)
    calls = collections.Counter()
    cur = None
    for line in open(mon, errors='replace'):
        m = re.match(r'[\d.]+ \[\d+ ([^\]]+)\] "([^"]*)"(?: "([^"]*)")?', line)
        if not m:
            continue
        who, cmd, arg = m.group(1), m.group(2).upper(), m.group(3)
        if who == 'lua':
            if cur:
                inner[cur][cmd] += 1
            continue
        cur = arg if cmd == 'FCALL' else None
        if cur:
            calls[cur] += 1

    print(f'By function (a second run of {n} with slowlog-log-slower-than 0 for each '
          f'FCALL\'s duration, wall time; a third with MONITOR for the commands each '
          'runs; runs batch differently, so FCALLs per job vary between them):')
    print()
    print('| function | FCALLs per job | jobs per FCALL | µs per FCALL | share of FCALL time | ≈ µs per job (share × the first run\'s FCALL µs per job) | commands inside per FCALL | commands inside per job | most frequent inside (per FCALL) |')
    print('|---|---|---|---|---|---|---|---|---|')
    fus = sum(r[2] for r in rows if r[0] == 'fcall') / n
    names = sorted(set(dur) | set(calls), key=lambda f: -sum(dur.get(f, [0])))
    for f in names:
        d = dur.get(f, [])
        c = calls.get(f, 0)
        ins = sum(inner[f].values())
        most = ', '.join(f'{k} {v / c:.1f}' for k, v in inner[f].most_common(6)) if c else ''
        print(f'| {f} | {len(d) / n:.3f} | {(n / len(d)) if d else 0:.1f} | '
              f'{(sum(d) / len(d)) if d else 0:.1f} | {100 * sum(d) / dtotal:.0f} % | {fus * sum(d) / dtotal:.1f} | '
              f'{(ins / c) if c else 0:.1f} | {ins / n:.2f} | {most} |')
    print()
    print(f'In the first run FCALLs took {fus:.1f} µs per job (commandstats usec) of the '
          f'{cpu_us:.1f} µs of Redis CPU per job (INFO cpu); the other '
          f'{cpu_us - fus:.1f} µs are outside command execution (reading and parsing '
          'requests, writing replies, the event loop) and the few commands called alone.')


main()
