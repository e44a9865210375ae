#!/usr/bin/env python3
"""Crash loop and exact resume of isifd (issue 8), with plain python3.

    crashloop.py [--kills N] [--seed S] [--determinism] [--isifd build/isifd]

Kill loop (--kills N, default 200): isifd trains a stream of small jobs on a
synthetic IDX dataset with two workers and is killed with SIGKILL N times,
restarting on the same state directory each time:
  - about 10% of the kills hit fresh state directories during start-up,
    half of them holding a version-1 database, so they land in (or around)
    the schema migrations; the database must come up at the latest version
    with its rows intact;
  - the rest hit a long-lived state directory: a third timed on the first
    sign of a checkpoint being written (a *.tmp.* file in a run directory
    or a ckpt-*.tmp snapshot directory), a tenth during start-up (queue
    recovery, dataset loading), the others at a random moment of training.
After every kill, with the daemon dead, the database is checked from
outside: PRAGMA integrity_check is ok; each job's metrics rows are exactly
epochs 1..epoch, every row seen before is still there unchanged (0 lost or
duplicated), no job failed or went missing; the checkpoint the database
names is a complete safetensors file of that epoch with its optimizer file.
Torn files are planted now and then (half a checkpoint in run/, a torn
ckpt-*.tmp snapshot, a stale snapshot) and must never be loaded. At each
restart every "resuming from epoch E" must name the epoch the database held
at the kill (its newest committed checkpoint). At the end the daemon runs
undisturbed: every job succeeds with rows 1..epochs.

--determinism: one job at threads=1 and a fixed seed, killed 5 times at
different points of its run (each resume replays the partial epoch from the
last epoch checkpoint), ends with a checkpoint byte-identical to the same
job run without interruption.

Prints one "PASS name" / "FAIL name" line per check and the figures.
"""
import argparse
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SLOW = 4 if os.environ.get("SANITIZED") else 1
ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "../.."))
FAILS = 0


def result(name, ok, detail=""):
    global FAILS
    if not ok:
        FAILS += 1
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, " (%s)" % detail if detail else ""),
          flush=True)
    return ok


# ---- fixtures ----------------------------------------------------------------
def make_dataset(path, n_train=512, n_test=64, side=16):
    """A synthetic IDX dataset (random pixels, 10 labels), seeded."""
    os.makedirs(path, exist_ok=True)
    r = random.Random(1234)

    def write(name, header, n):
        with open(os.path.join(path, name), "wb") as f:
            f.write(header + bytes(r.randrange(256) for _ in range(n)))
    write("train-images-idx3-ubyte", struct.pack(">IIII", 0x803, n_train, side, side),
          n_train * side * side)
    write("train-labels-idx1-ubyte", struct.pack(">II", 0x801, n_train), 0)
    with open(os.path.join(path, "train-labels-idx1-ubyte"), "ab") as f:
        f.write(bytes(i % 10 for i in range(n_train)))
    write("t10k-images-idx3-ubyte", struct.pack(">IIII", 0x803, n_test, side, side),
          n_test * side * side)
    with open(os.path.join(path, "t10k-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, n_test) + bytes(i % 10 for i in range(n_test)))


def register_dataset(db, name, path):
    """The dataset registry row (POST /datasets is another part's work)."""
    con = sqlite3.connect(db, timeout=10)
    con.execute("INSERT OR REPLACE INTO datasets (name, format, path, created_at) "
                "VALUES (?, 'idx', ?, '2026-01-01T00:00:00Z')", (name, path))
    con.commit()
    con.close()


def n_migrations():
    return len([f for f in os.listdir(os.path.join(ROOT, "migrations")) if f.endswith(".sql")])


def attempts_version():
    """The schema version that adds jobs.attempts (migrations/NNN_attempts.sql)."""
    return next(int(f[:3]) for f in os.listdir(os.path.join(ROOT, "migrations"))
                if f.endswith("_attempts.sql"))


# ---- the daemon -------------------------------------------------------------------
class Daemon:
    def __init__(self, isifd, state, flags=()):
        self.isifd, self.state, self.flags = isifd, state, list(flags)
        self.proc, self.port, self.starts, self.log = None, None, 0, None

    def start(self):
        self.starts += 1
        self.log = "%s.%d.log" % (self.state, self.starts)
        self.port = None
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [self.isifd, "--listen", "127.0.0.1:0", "--state-dir", self.state,
                 "--web-dir", os.path.join(ROOT, "web"), "--shutdown-timeout", "8"] + self.flags,
                stdout=out, stderr=subprocess.STDOUT)
        self.t_spawn = time.monotonic()

    def wait_listening(self, timeout=10.0):
        end = time.monotonic() + timeout * SLOW
        while time.monotonic() < end:
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", self.log_text())
            if m:
                self.port = int(m.group(1))
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.005)
        return False

    def log_text(self):
        with open(self.log, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc:
            self.proc.wait()
        self.proc = None

    def term(self):
        if not self.proc:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=15 * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        return rc

    def request(self, method, path, body=None, timeout=10.0):
        """(status, parsed JSON or raw bytes); (0, None) if the daemon is gone."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout * SLOW) as r:
                raw, code, ctype = r.read(), r.status, r.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            raw, code, ctype = e.read(), e.code, e.headers.get("Content-Type", "")
        except (OSError, urllib.error.URLError):
            return 0, None
        if ctype.startswith("application/json"):
            return code, json.loads(raw)
        return code, raw


# ---- checks from outside, with the daemon dead ---------------------------------------
def read_safetensors(path):
    """(header dict, data bytes) of a complete file; raises ValueError otherwise."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: shorter than 8 bytes" % path)
    n = struct.unpack("<Q", blob[:8])[0]
    if n > len(blob) - 8:
        raise ValueError("%s: header runs past the end" % path)
    header = json.loads(blob[8:8 + n])
    data = blob[8 + n:]
    ends = sorted(v["data_offsets"] for k, v in header.items() if k != "__metadata__")
    at = 0
    for a, b in ends:
        if a != at:
            raise ValueError("%s: tensors not contiguous at %d" % (path, at))
        at = b
    if at != len(data):
        raise ValueError("%s: %d data bytes, tensors cover %d" % (path, len(data), at))
    return header, data


class Ledger:
    """What the database showed so far: every metrics row, each job's epoch."""

    def __init__(self):
        self.rows = {}         # (job, epoch) -> row tuple
        self.epoch = {}        # job -> epoch at the last kill
        self.accepted = set()  # ids POST /jobs answered 201 for
        self.rows_checked = 0
        self.unfinished = set()  # jobs queued or running at the last check

    def check(self, state):
        """Checks the database after a kill; returns a list of problems."""
        problems = []
        db = os.path.join(state, "isifd.db")
        con = sqlite3.connect(db, timeout=10)
        try:
            ic = con.execute("PRAGMA integrity_check").fetchone()[0]
            if ic != "ok":
                problems.append("integrity_check: %s" % ic)
            jobs = con.execute("SELECT id, status, epoch, epochs, checkpoint FROM jobs").fetchall()
            rows = con.execute("SELECT * FROM metrics ORDER BY job_id, epoch").fetchall()
        finally:
            con.close()
        by_job = {}
        for r in rows:
            by_job.setdefault(r[0], []).append(r)
        present = {j[0] for j in jobs}
        for jid in self.accepted - present:
            problems.append("job %d accepted but missing" % jid)
        for (jid, epoch), old in self.rows.items():
            now = next((r for r in by_job.get(jid, []) if r[1] == epoch), None)
            if now is None:
                problems.append("job %d: row of epoch %d lost" % (jid, epoch))
            elif now != old:
                problems.append("job %d: row of epoch %d changed" % (jid, epoch))
        for jid, status, epoch, epochs, ckpt in jobs:
            got = [r[1] for r in by_job.get(jid, [])]
            if got != list(range(1, epoch + 1)):
                problems.append("job %d: rows %s for epoch %d" % (jid, got, epoch))
            if status not in ("queued", "running", "succeeded"):
                problems.append("job %d: %s" % (jid, status))
            if status == "succeeded" and epoch != epochs:
                problems.append("job %d: succeeded at epoch %d of %d" % (jid, epoch, epochs))
            if jid in self.epoch and epoch < self.epoch[jid]:
                problems.append("job %d: epoch went back from %d to %d" % (jid, self.epoch[jid], epoch))
            if epoch > 0:
                problems += check_checkpoint(state, jid, epoch, ckpt)
            self.epoch[jid] = epoch
        for r in rows:
            self.rows[(r[0], r[1])] = r
        self.unfinished = {j[0] for j in jobs if j[1] in ("queued", "running")}
        self.rows_checked += len(rows)
        return problems


def check_checkpoint(state, jid, epoch, rel):
    if not rel:
        return ["job %d: epoch %d but no checkpoint" % (jid, epoch)]
    path = os.path.join(state, rel)
    try:
        header, _ = read_safetensors(path)
        meta = header.get("__metadata__", {})
        if meta.get("epoch") != str(epoch):
            return ["job %d: %s holds epoch %s, the database says %d" % (jid, rel, meta.get("epoch"), epoch)]
        read_safetensors(os.path.join(os.path.dirname(path), meta["optim"]))
    except (OSError, ValueError, KeyError) as e:
        return ["job %d: checkpoint %s: %s" % (jid, rel, e)]
    return []


PLANTED = set()


def temporary_files(state):
    """Checkpoint files and snapshot directories under their temporary names
    (a write in progress), except the torn ones this script planted."""
    found = set()
    jobs = os.path.join(state, "jobs")
    try:
        for j in os.listdir(jobs):
            d = os.path.join(jobs, j)
            for e in os.listdir(d):
                if e.startswith("ckpt-") and e.endswith(".tmp"):
                    found.add(os.path.join(d, e))
                elif e == "run":
                    found |= {os.path.join(d, e, f) for f in os.listdir(os.path.join(d, e))
                              if ".tmp." in f}
    except OSError:
        pass
    return found - PLANTED


def writing_checkpoint(state, before=frozenset()):
    """True when a checkpoint write is in progress that was not there before."""
    return bool(temporary_files(state) - before)


def plant_torn_files(state, rng, job_ids):
    """Half checkpoints in a run directory (under the final and a temporary
    name), a torn snapshot in progress and a stale old snapshot: a restart
    must load none of them."""
    planted = 0
    jobs = os.path.join(state, "jobs")
    for j in sorted(os.listdir(jobs)):
        if not j.isdigit() or int(j) not in job_ids:
            continue
        d = os.path.join(jobs, j)
        ck = os.path.join(d, "run", "checkpoint-latest.safetensors")
        if os.path.exists(ck):
            # A new file (the old one is a hard link of the committed snapshot).
            with open(ck, "rb") as f:
                data = f.read()
            os.unlink(ck)
            for name in (ck, ck + ".tmp.999.1"):
                with open(name, "wb") as f:
                    f.write(data[:len(data) // 2])
            PLANTED.add(ck + ".tmp.999.1")
            planted += 2
        snaps = sorted(e for e in os.listdir(d) if re.fullmatch(r"ckpt-\d{6}", e))
        if snaps:
            src = os.path.join(d, snaps[-1], "checkpoint-latest.safetensors")
            if os.path.exists(src):
                torn = os.path.join(d, "ckpt-%06d.tmp" % (int(snaps[-1][5:]) + 1))
                os.makedirs(torn, exist_ok=True)
                PLANTED.add(torn)
                with open(src, "rb") as f:
                    data = f.read()
                with open(os.path.join(torn, "checkpoint-latest.safetensors"), "wb") as f:
                    f.write(data[:rng.randrange(1, len(data))])
                stale = os.path.join(d, "ckpt-000000")
                os.makedirs(stale, exist_ok=True)
                with open(os.path.join(stale, "checkpoint-latest.safetensors"), "wb") as f:
                    f.write(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
                planted += 2
    return planted


# ---- kills in the migrations -----------------------------------------------------------
def seed_v1_database(db):
    """A database as the first isifd release left it: 001 applied, one job
    succeeded with two metrics rows, one cancelled."""
    con = sqlite3.connect(db)
    with open(os.path.join(ROOT, "migrations", "001_init.sql")) as f:
        con.executescript(f.read())
    con.execute("PRAGMA user_version = 1")
    now = "2026-01-01T00:00:00Z"
    for jid, status in ((1, "succeeded"), (2, "cancelled")):
        con.execute("INSERT INTO jobs (id, status, spec, dataset, epochs, epoch, created_at) "
                    "VALUES (?, ?, '{}', 'tiny', 2, ?, ?)", (jid, status, 2 if jid == 1 else 0, now))
    for e in (1, 2):
        con.execute("INSERT INTO metrics (job_id, epoch, loss, lr, seconds, images_per_sec) "
                    "VALUES (1, ?, 5.0, 0.03, 1.0, 100.0)", (e,))
    con.commit()
    con.close()


def schema_state(db):
    """(user_version, has the attempts column, jobs, metrics rows) or None if no database."""
    if not os.path.exists(db):
        return None
    con = sqlite3.connect(db, timeout=10)
    try:
        ic = con.execute("PRAGMA integrity_check").fetchone()[0]
        v = con.execute("PRAGMA user_version").fetchone()[0]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        cols = {r[1] for r in con.execute("PRAGMA table_info(jobs)")} if "jobs" in tables else set()
        jobs = con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0] if "jobs" in tables else 0
        rows = con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] if "metrics" in tables else 0
    finally:
        con.close()
    return ic, v, "attempts" in cols, jobs, rows


def migration_kill(isifd, base, k, rng):
    """One kill at start-up on a fresh state directory; returns (problems, mid)."""
    state = os.path.join(base, "mig%03d" % k)
    os.makedirs(state)
    seeded = k % 2 == 0
    if seeded:
        seed_v1_database(os.path.join(state, "isifd.db"))
    d = Daemon(isifd, state)
    d.start()
    time.sleep(rng.uniform(0, 0.04) * SLOW)
    d.kill()
    db = os.path.join(state, "isifd.db")
    problems, latest = [], n_migrations()
    s = schema_state(db)
    mid = s is None or s[1] < latest
    if s is not None:
        ic, v, has_attempts, jobs, rows = s
        if ic != "ok":
            problems.append("integrity_check %s" % ic)
        if (v >= attempts_version()) != has_attempts:
            problems.append("user_version %d but attempts column %s" % (v, has_attempts))
        if seeded and (jobs, rows) != (2, 2):
            problems.append("seeded rows: %d jobs, %d metrics" % (jobs, rows))
    d.start()
    if not d.wait_listening():
        problems.append("restart failed: %s" % d.log_text()[-300:])
    d.term()
    s = schema_state(db)
    if s is None or s[0] != "ok" or s[1] != latest or not s[2]:
        problems.append("after restart: %s" % (s,))
    elif seeded and (s[3], s[4]) != (2, 2):
        problems.append("after restart: %d jobs, %d metrics" % (s[3], s[4]))
    shutil.rmtree(state, ignore_errors=True)
    return problems, mid


# ---- the kill loop ---------------------------------------------------------------------
def job_spec(rng):
    return {"dataset": "tiny", "model": "convnet", "epochs": rng.randint(3, 7), "batch_size": 32,
            "train_subset": 128, "threads": 1, "seed": rng.randrange(1, 1000),
            "eval": {"every": rng.choice([0, 0, 2]), "knn_k": 20}}


def top_up(d, ledger, rng, want=3):
    """Keeps `want` unfinished jobs in the queue."""
    code, body = d.request("GET", "/jobs?limit=10000")
    if code != 200:
        return
    open_jobs = sum(1 for j in body["jobs"] if j["status"] in ("queued", "running"))
    for _ in range(want - open_jobs):
        code, body = d.request("POST", "/jobs", job_spec(rng))
        if code == 201:
            ledger.accepted.add(body["id"])


def kill_loop(args, base, rng):
    state = os.path.join(base, "state")
    data = os.path.join(base, "tiny")
    make_dataset(data)
    d = Daemon(args.isifd, state, ["--workers", "2", "--cores", "2", "--max-attempts", "0"])
    ledger = Ledger()
    n_mig = max(1, args.kills // 10)
    n_main = args.kills - n_mig
    figures = {"migration": 0, "mid-migration": 0, "start-up": 0, "checkpoint": 0,
               "training": 0, "in-tmp-write": 0, "resumes": 0, "planted": 0}
    problems = []

    # Kills in and around the migrations, on fresh state directories.
    for k in range(n_mig):
        p, mid = migration_kill(args.isifd, base, k, rng)
        figures["migration"] += 1
        figures["mid-migration"] += mid
        problems += ["migration kill %d: %s" % (k, x) for x in p]
    result("crashloop_migration_kills", not problems,
           "; ".join(problems[:3]) if problems else "%d kills at start-up, %d of them before "
           "the schema was current, upgraded at the next start"
           % (figures["migration"], figures["mid-migration"]))

    d.start()
    if not d.wait_listening():
        return result("crashloop_first_start", False, d.log_text()[-500:])
    register_dataset(os.path.join(state, "isifd.db"), "tiny", data)
    loop_problems = []
    t_loop = time.monotonic()
    for k in range(n_main):
        mode = rng.random()
        stale = temporary_files(state)       # left by the previous kill
        if d.proc is None:
            d.start()
        if mode < 0.1:                       # start-up: recovery, dataset load
            time.sleep(rng.uniform(0, 0.15) * SLOW)
            figures["start-up"] += 1
        else:
            if not d.wait_listening():
                loop_problems.append("start %d: no listening line" % d.starts)
                break
            top_up(d, ledger, rng)
            if mode < 0.4:                   # at a checkpoint write
                end = time.monotonic() + 3 * SLOW
                while time.monotonic() < end and not writing_checkpoint(state, stale):
                    pass
                time.sleep(rng.uniform(0, 0.003))
                figures["checkpoint"] += 1
            else:                            # anywhere in training
                time.sleep(rng.uniform(0.05, 1.5) * SLOW)
                figures["training"] += 1
        log_before = d.log
        d.kill()
        figures["in-tmp-write"] += writing_checkpoint(state, stale)
        text = open(log_before, errors="replace").read()
        for jid, e in re.findall(r"job (\d+): resuming from epoch (\d+)", text):
            want = ledger.epoch.get(int(jid), 0)
            figures["resumes"] += 1
            if int(e) != want:
                loop_problems.append("start %d: job %s resumed from epoch %s, database had %d"
                                     % (d.starts, jid, e, want))
        for line in re.findall(r".*(?:failed|error).*", text):
            loop_problems.append("start %d: %s" % (d.starts, line.strip()))
        loop_problems += ["kill %d: %s" % (k + 1, x) for x in ledger.check(state)]
        if k % 7 == 3:
            figures["planted"] += plant_torn_files(state, rng, ledger.unfinished)
        if loop_problems:
            break
    loop_seconds = time.monotonic() - t_loop
    ok = result("crashloop_kills", not loop_problems,
                "; ".join(loop_problems[:3]) if loop_problems else
                "%d kills: %d at start-up, %d timed on a checkpoint write (%d with a "
                "temporary file open), %d in training; %d resumes checked; %.0f s"
                % (n_main, figures["start-up"], figures["checkpoint"], figures["in-tmp-write"],
                   figures["training"], figures["resumes"], loop_seconds))
    if not ok:
        print("    state kept in %s" % base, flush=True)
        args.keep = True
        d.kill()
        return

    # The end: no more kills; every job finishes.
    d.start()
    finished = d.wait_listening()
    end = time.monotonic() + 180 * SLOW
    jobs = []
    while finished and time.monotonic() < end:
        code, body = d.request("GET", "/jobs?limit=10000")
        jobs = body["jobs"] if code == 200 else []
        if jobs and all(j["status"] not in ("queued", "running") for j in jobs):
            break
        time.sleep(0.2)
    rc = d.term()
    final = ledger.check(state)
    bad = [j for j in jobs if j["status"] != "succeeded"]
    result("crashloop_no_job_lost_or_stuck", finished and not bad and jobs and rc == 0 and
           ledger.accepted <= {j["id"] for j in jobs},
           "%d jobs: %s" % (len(jobs), ", ".join("%d %s" % (j["id"], j["status"]) for j in bad[:5])
                           or "all succeeded"))
    result("crashloop_rows_exact_and_integrity_ok", not final,
           "; ".join(final[:3]) if final else "%d metrics rows, each epoch once"
           % sum(1 for _ in ledger.rows))
    result("crashloop_torn_files_never_loaded", not final and not bad,
           "%d torn files planted in unfinished jobs" % figures["planted"])
    print("crashloop figures: %d kills survived (%d in migrations, %d before the schema was current); "
          "%d resumes verified; %d metrics rows checked over %d checks"
          % (args.kills, figures["migration"], figures["mid-migration"], figures["resumes"],
             ledger.rows_checked, n_main + 1), flush=True)


# ---- exact resume --------------------------------------------------------------------------
DET_SPEC = {"dataset": "tiny", "model": "convnet", "epochs": 4, "batch_size": 32,
            "train_subset": 128, "threads": 1, "seed": 11, "eval": {"every": 0}}


def run_job(args, base, name, kills):
    """Runs DET_SPEC in a fresh state dir, SIGKILLing at each (epoch, images) of
    kills once the job's progress passes it; returns (checkpoint bytes, kills done)."""
    state = os.path.join(base, name)
    d = Daemon(args.isifd, state, ["--workers", "1", "--cores", "1", "--progress-interval-ms", "0"])
    d.start()
    if not d.wait_listening():
        return None, 0
    register_dataset(os.path.join(state, "isifd.db"), "tiny", os.path.join(base, "tiny"))
    code, _ = d.request("POST", "/jobs", DET_SPEC)
    if code != 201:
        return None, 0
    done = 0
    for epoch, images in kills:
        end = time.monotonic() + 60 * SLOW
        while time.monotonic() < end:
            code, job = d.request("GET", "/jobs/1")
            p = job.get("progress") if code == 200 else None
            if p and (p["epoch"], p["images_done"]) >= (epoch, images):
                break
            if code == 200 and job["status"] == "succeeded":
                break
            time.sleep(0.01)
        code, job = d.request("GET", "/jobs/1")
        d.kill()
        done += code == 200 and job["status"] == "running"
        d.start()
        if not d.wait_listening():
            return None, done
    end = time.monotonic() + 120 * SLOW
    while time.monotonic() < end:
        code, job = d.request("GET", "/jobs/1")
        if code == 200 and job["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.05)
    code, blob = d.request("GET", "/jobs/1/checkpoint")
    d.term()
    return (blob if code == 200 else None), done


def determinism(args, base):
    data = os.path.join(base, "tiny")
    if not os.path.isdir(data):
        make_dataset(data)
    plain, _ = run_job(args, base, "det-plain", [])
    # 4 epochs of 4 batches of 32: kills inside epochs 1, 2 (twice), 3 and 4.
    killed, n = run_job(args, base, "det-killed", [(1, 64), (2, 32), (2, 96), (3, 64), (4, 96)])
    same = plain is not None and killed is not None and plain == killed
    detail = "%d kills; checkpoints of %s and %s bytes" % (
        n, len(plain) if plain else "no", len(killed) if killed else "no")
    if plain and killed and not same:
        a, b = read_blob(plain), read_blob(killed)
        diff = sum(1 for x, y in zip(a, b) if x != y)
        detail += ", %d of %d data bytes differ" % (diff, len(a))
    result("crashloop_exact_resume_after_5_kills", same and n == 5, detail)


def read_blob(raw):
    n = struct.unpack("<Q", raw[:8])[0]
    return raw[8 + n:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--isifd", default=os.path.join(os.environ.get("BUILD", "build"), "isifd"))
    ap.add_argument("--kills", type=int, default=200)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--determinism", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the state directories")
    args = ap.parse_args()
    if not os.access(args.isifd, os.X_OK):
        result("crashloop", False, "%s not built" % args.isifd)
        return 1
    base = tempfile.mkdtemp(prefix="isifd-crash.")
    print("crashloop: seed %d, state in %s" % (args.seed, base), flush=True)
    rng = random.Random(args.seed)
    try:
        if args.kills > 0:
            kill_loop(args, base, rng)
        if args.determinism:
            determinism(args, base)
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
