"""The README's code blocks, run as they stand against a daemon of their own."""

import os
import re
import signal
import subprocess
import sys

import jobfs

README = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")


def test_the_readme_worker_and_master_run_as_written(daemon, tmp_path):
    """The README's worker serves its master: the id and result, the job's
    status, a streamed partial; a delayed job is cancelled; SIGTERM ends the
    worker with status 0."""
    with open(README) as f:
        blocks = re.findall(r"^```python\n(.*?)^```", f.read(), re.M | re.S)
    assert len(blocks) == 2, "a README python block that no test runs"
    paths = []
    for name, code in zip(("worker.py", "master.py"), blocks):
        paths.append(str(tmp_path / name))
        with open(paths[-1], "w") as f:
            f.write(code)
    w = subprocess.Popen([sys.executable, paths[0]], env=daemon.env())
    try:
        m = subprocess.run([sys.executable, paths[1]], env=daemon.env(),
                           capture_output=True, text=True, timeout=60)
        assert m.returncode == 0, m.stderr
        out = m.stdout.splitlines()
        assert len(out) == 3, m.stdout
        assert re.fullmatch(r"\S+ \{'ok': True\}", out[0]), out[0]
        assert out[1:] == ["done", "{'pct': 50}"]
        c = jobfs.Client(**daemon.kw())
        assert c.status(out[0].split(" ", 1)[0])["status"] == "done"
        # The delayed job was cancelled, and no other is left.
        t = c.stats("resize")["types"]["resize"]
        assert (t["done"], t["cancelled"], t["delayed"], t["queued"]) == (2, 1, 0, 0), t
        c.close()
        assert w.poll() is None, "the worker ended before it was stopped"
        w.send_signal(signal.SIGTERM)
        assert w.wait(20) == 0
    finally:
        if w.poll() is None:
            w.kill()
        w.wait()
