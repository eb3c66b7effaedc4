#!/usr/bin/env python3
"""readme.py: the README's shell blocks, for tests/readme.bats.

  readme.py blocks README OUTDIR
      Writes each ```sh, ```console, ```bash or ```shell block of README to
      OUTDIR/NN.body (its lines, less the fence's indentation) and lists
      them on stdout, one per line: NN<TAB>KIND<TAB>KEY<TAB>EXCUSE, where
      KEY is "HEADING#N" (the block's heading and its place under it,
      counting from 1) and EXCUSE the reason given by a
      <!-- not run: REASON --> comment on the line before the fence (else
      empty).  Other fences (plain ```, a layout) are not shell.

  readme.py console BODY OUTDIR
      Turns a console block (lines "$ COMMAND", each followed by the output
      it prints) into OUTDIR/script.sh, to be sourced by bash: each command
      runs in that one shell, its output (stdout and stderr) into
      OUTDIR/N.out; what the README shows is in OUTDIR/N.exp.  A command
      that ends in "&" or says "# terminal N" runs in the background (its
      output is not compared, it comes whenever; its process id is added
      to OUTDIR/pids); after one that starts
      jobfs, the script waits until the ports it names accept connections
      (readme_wait_port, defined by the caller).

  readme.py check OUTDIR
      Compares each N.out with N.exp: line by line, the same text, except
      that a run of 5 or more digits in the README (an id, a port the
      kernel chose) matches any run of digits.  Prints the differences;
      exit status 1 if there are any.
"""
import os
import re
import shlex
import sys

SHELL_KINDS = {"sh", "console", "bash", "shell"}


def blocks(readme, outdir):
    heading = ""
    count = {}
    prev = ""
    n = 0
    lines = open(readme, encoding="utf-8").read().split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(#{1,6})\s+(.*?)\s*$", line)
        if m:
            heading = m.group(2)
        m = re.match(r"^(\s*)```(\S*)\s*$", line)
        if m:
            indent, kind = m.group(1), m.group(2)
            body = []
            i += 1
            while i < len(lines) and not re.match(r"^\s*```\s*$", lines[i]):
                body.append(lines[i][len(indent):]
                            if lines[i].startswith(indent) else lines[i])
                i += 1
            if kind in SHELL_KINDS:
                n += 1
                count[heading] = count.get(heading, 0) + 1
                key = "%s#%d" % (heading, count[heading])
                e = re.match(r"^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$", prev)
                name = "%02d" % n
                with open(os.path.join(outdir, name + ".body"), "w") as f:
                    f.write("\n".join(body) + "\n")
                print("\t".join([name, kind, key, e.group(1) if e else ""]))
            prev = ""
            i += 1
            continue
        if line.strip():
            prev = line
        i += 1


def daemon_ports(cmd):
    """The ports a jobfs command line listens on, if it starts jobfs."""
    words = shlex.split(cmd, comments=True)
    words = [w for w in words if w != "&"]
    while words and re.match(r"^[A-Z_]+=", words[0]):
        words.pop(0)
    if not words or os.path.basename(words[0]) != "jobfs":
        return []
    ports = {"--master-port": "9998", "--worker-port": "9999"}
    for a, b in zip(words, words[1:]):
        if a in ("--master-port", "--worker-port", "--http"):
            ports[a] = b.rsplit(":", 1)[-1]
    return list(ports.values())


def console(body, outdir):
    cmds = []  # [command, expected lines]
    for line in open(body, encoding="utf-8").read().rstrip("\n").split("\n"):
        if line.startswith("$ "):
            cmds.append([line[2:], []])
        elif cmds:
            cmds[-1][1].append(line)
        elif line.strip():
            sys.exit("readme.py: output before any command: " + line)
    with open(os.path.join(outdir, "script.sh"), "w") as s:
        for n, (cmd, exp) in enumerate(cmds, 1):
            with open(os.path.join(outdir, "%d.exp" % n), "w") as f:
                f.write("".join(l + "\n" for l in exp))
            out = '"$READMEOUT/%d.out"' % n
            code = re.sub(r"\s+#[^'\"]*$", "", cmd).rstrip()
            terminal = re.search(r"#\s*terminal \d", cmd) is not None
            bg = terminal or code.endswith("&")
            s.write("printf '%%s\\n' %s >>\"$READMEOUT/commands\"\n"
                    % shlex.quote(cmd))
            if bg:
                code = code.rstrip("&").rstrip()
                s.write("%s >%s 2>&1 &\n" % (code, out))
                s.write("echo $! >>\"$READMEOUT/pids\"\n")
                s.write("echo bg >\"$READMEOUT/%d.bg\"\n" % n)
                for p in daemon_ports(code):
                    s.write("readme_wait_port %s\n" % p)
            else:
                s.write("{ %s\n} >%s 2>&1\n" % (cmd, out))


def pattern(line):
    parts = re.split(r"(\d{5,})", line)
    return "".join("[0-9]+" if re.fullmatch(r"\d{5,}", p) else re.escape(p)
                   for p in parts)


def check(outdir):
    bad = 0
    n = 1
    while os.path.exists(os.path.join(outdir, "%d.exp" % n)):
        exp = open(os.path.join(outdir, "%d.exp" % n)).read().splitlines()
        if os.path.exists(os.path.join(outdir, "%d.bg" % n)):
            n += 1
            continue
        outf = os.path.join(outdir, "%d.out" % n)
        out = open(outf).read().splitlines() if os.path.exists(outf) else None
        ok = out is not None and len(out) == len(exp) and all(
            re.fullmatch(pattern(e), o) for e, o in zip(exp, out))
        if not ok:
            bad += 1
            cmd = open(os.path.join(outdir, "commands")).read().split("\n")
            print("command %d: $ %s" % (n, cmd[n - 1] if n <= len(cmd) else "?"))
            print("  README shows:")
            for e in exp:
                print("    " + e)
            print("  it printed:" if out is not None else "  it did not run")
            for o in out or []:
                print("    " + o)
        n += 1
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "blocks":
        blocks(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 4 and sys.argv[1] == "console":
        console(sys.argv[2], sys.argv[3])
    elif len(sys.argv) == 3 and sys.argv[1] == "check":
        check(sys.argv[2])
    else:
        sys.exit(__doc__)
