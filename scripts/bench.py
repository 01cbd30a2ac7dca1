#!/usr/bin/env python3
"""Benchmark: this replicator against `aws s3 sync`, rclone and s3sync, bucket to bucket on
the same local S3 server, identical workloads, alternating tools, several repetitions; plus
the server's raw GET-only and PUT-only throughput measured with a Rust client at high
concurrency (`measure raw`). Two servers:

- moto, for full semantics: versioning, tags, SSE-KMS with the destination key, two accounts
  (the destination role is assumed through moto's STS);
- s3s-fs, for raw speed: a fast S3 front on the local file system, with no versioning,
  tagging or KMS. Every tool writes plainly there (the replicator still sends its SSE-KMS
  headers, which s3s-fs ignores). s3s-fs has no STS, so the replicator's AssumeRole goes to
  a stub STS here that hands back the server's one key pair.

Every peer runs at the replicator's concurrency (CONCURRENCY objects at once: s3sync
`--worker-size`, rclone `--transfers`/`--checkers`, `aws s3 sync` `max_concurrent_requests`)
and, labelled "(defaults)", at its own defaults. For the single large object the streamed copy
is also compared with peers that stream too: rclone between two remotes (it copies inside
the server only within one remote) and s3sync (which streams unless told otherwise). Wall
time, client CPU seconds (user + sys) and peak RSS come from /usr/bin/time -v.

Prints a Markdown table (and writes it to --out). Run through `./scripts/bench`, which
installs everything first."""

import argparse
import concurrent.futures
import datetime
import http.server
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import boto3
import botocore.config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, ".venv", "bin", "python")
REGION = "us-east-1"
SRC_CREDS = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "bench-secret"}
ROLE = "arn:aws:iam::222222222222:role/replicator-destination"
MIB = 1024 * 1024
# Objects in flight, for the replicator (SYNC_CONCURRENCY) and for every peer.
CONCURRENCY = 64


def start_moto():
    p = subprocess.Popen([PY, os.path.join(ROOT, "tests", "moto_runner.py")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(p.stdout.readline())
    return p, f"http://127.0.0.1:{port}"


def requests_served(endpoint):
    """Requests the server answered so far (moto_runner counts them); None for s3s-fs."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_bench/requests") as r:
            return int(r.read())
    except Exception:
        return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_s3s_fs():
    root = tempfile.mkdtemp(prefix="bench-s3s-fs-")
    port = free_port()
    p = subprocess.Popen([os.path.join(ROOT, ".tools", "bin", "s3s-fs"), "--host", "127.0.0.1", "--port", str(port),
                          "--access-key", SRC_CREDS["AWS_ACCESS_KEY_ID"], "--secret-key", SRC_CREDS["AWS_SECRET_ACCESS_KEY"],
                          root], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            break
        except OSError:
            time.sleep(0.05)
    return p, f"http://127.0.0.1:{port}", root


class StubSts(http.server.BaseHTTPRequestHandler):
    """AssumeRole for the s3s-fs run: answers every call with the server's key pair."""

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        expires = (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = (
            '<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult><Credentials>'
            f'<AccessKeyId>{SRC_CREDS["AWS_ACCESS_KEY_ID"]}</AccessKeyId>'
            f'<SecretAccessKey>{SRC_CREDS["AWS_SECRET_ACCESS_KEY"]}</SecretAccessKey>'
            f"<SessionToken>bench</SessionToken><Expiration>{expires}</Expiration></Credentials>"
            "<AssumedRoleUser><AssumedRoleId>AROABENCH:bench</AssumedRoleId>"
            "<Arn>arn:aws:sts::222222222222:assumed-role/replicator-destination/bench</Arn></AssumedRoleUser>"
            "</AssumeRoleResult><ResponseMetadata><RequestId>bench</RequestId></ResponseMetadata></AssumeRoleResponse>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def start_stub_sts():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubSts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


class PlainWorld:
    """s3s-fs: one account, plain buckets, no KMS; the replicator's STS is the stub."""

    def __init__(self, endpoint, root, sts):
        self.ep, self.root, self.sts = endpoint, root, sts
        self.kms = False
        self.src = self.dst = boto3.client(
            "s3", endpoint_url=endpoint, region_name=REGION, aws_access_key_id=SRC_CREDS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=SRC_CREDS["AWS_SECRET_ACCESS_KEY"],
            config=botocore.config.Config(s3={"addressing_style": "path"}, max_pool_connections=32))
        # s3s-fs keeps no KMS keys; the replicator's SSE-KMS headers are accepted and ignored.
        self.dst_key = "arn:aws:kms:us-east-1:222222222222:key/00000000-0000-0000-0000-00000000beef"

    def bucket(self, client, name, key):
        client.create_bucket(Bucket=name)
        return name

    def drop(self, bucket, client=None):
        shutil.rmtree(os.path.join(self.root, bucket), ignore_errors=True)

    populate = None  # set below (shared with World)
    count = None


class World:
    def __init__(self, endpoint):
        self.ep = endpoint
        self.sts = None
        self.kms = True
        kw = dict(endpoint_url=endpoint, region_name=REGION,
                  aws_access_key_id=SRC_CREDS["AWS_ACCESS_KEY_ID"],
                  aws_secret_access_key=SRC_CREDS["AWS_SECRET_ACCESS_KEY"])
        self.src = boto3.client("s3", **kw)
        kms_a = boto3.client("kms", **kw)
        c = boto3.client("sts", **kw).assume_role(RoleArn=ROLE, RoleSessionName="bench", ExternalId="bench-external")["Credentials"]
        dkw = dict(endpoint_url=endpoint, region_name=REGION, aws_access_key_id=c["AccessKeyId"],
                   aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"])
        self.dst = boto3.client("s3", **dkw)
        self.src_key = kms_a.create_key()["KeyMetadata"]["Arn"]
        self.dst_key = boto3.client("kms", **dkw).create_key()["KeyMetadata"]["Arn"]

    def bucket(self, client, name, key):
        client.create_bucket(Bucket=name)
        client.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        client.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [{
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key},
            "BucketKeyEnabled": True}]})
        return name

    def populate(self, bucket, count, size):
        blob = os.urandom(size)

        def put(i):
            self.src.put_object(Bucket=bucket, Key=f"data/{i:06d}.bin", Body=blob)

        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            list(pool.map(put, range(count)))

    def count(self, bucket):
        n, total = 0, 0
        for page in self.dst.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for o in page.get("Contents", []):
                if not o["Key"].startswith(".s3-fallback-replicator/"):
                    n += 1
                    total += o["Size"]
        return n, total

    def drop(self, bucket, client=None):
        """Frees the server's memory: a destination is not needed once it is counted."""
        client = client or self.dst
        paginator = client.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=bucket):
            victims = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                       for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for i in range(0, len(victims), 1000):
                client.delete_objects(Bucket=bucket, Delete={"Objects": victims[i:i + 1000], "Quiet": True})


PlainWorld.populate = World.populate
PlainWorld.count = World.count


def timed(cmd, env, allow_failure=False):
    """Wall time, client CPU seconds (user + sys) and peak RSS (KiB) of a command, from
    /usr/bin/time -v."""
    full_env = dict(os.environ)
    full_env.pop("AWS_CA_BUNDLE", None)
    full_env.update(env)
    started = time.monotonic()
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], env=full_env, capture_output=True, text=True)
    wall = time.monotonic() - started
    # s3sync exits 3 for warnings (here: multipart ETags differ from the source's single-part
    # ones); the copy itself is checked by the caller.
    if out.returncode != 0 and not allow_failure and not (cmd[0].endswith("s3sync") and out.returncode == 3):
        raise RuntimeError(f"{cmd[0]} failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    cpu = sum(float(re.search(rf"{kind} time \(seconds\): ([0-9.]+)", out.stderr).group(1))
              for kind in ("User", "System"))
    return wall, cpu, rss


def aws_config(concurrency):
    """An AWS CLI config file setting `s3 max_concurrent_requests`."""
    path = os.path.join(tempfile.gettempdir(), f"bench-aws-config-{concurrency}")
    with open(path, "w") as f:
        f.write(f"[default]\ns3 =\n  max_concurrent_requests = {concurrency}\n")
    return path


def rclone_remote(name, world):
    ep = world.ep
    prefix = f"RCLONE_CONFIG_{name.upper()}_"
    return {prefix + "TYPE": "s3", prefix + "PROVIDER": "Other", prefix + "ENDPOINT": ep,
            prefix + "REGION": REGION, prefix + "ACCESS_KEY_ID": SRC_CREDS["AWS_ACCESS_KEY_ID"],
            prefix + "SECRET_ACCESS_KEY": SRC_CREDS["AWS_SECRET_ACCESS_KEY"], prefix + "FORCE_PATH_STYLE": "true"}


def tools(world, src, dst, size=0):
    """Every tool's command and environment, by label."""
    ep = world.ep
    base = {**SRC_CREDS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": ep,
            "AWS_EC2_METADATA_DISABLED": "true"}
    if world.sts:
        base["AWS_ENDPOINT_URL_STS"] = world.sts
    ours_env = {**base, "SOURCE_BUCKET": src, "DESTINATION_BUCKET": dst, "DESTINATION_ROLE_ARN": ROLE,
                "DESTINATION_EXTERNAL_ID": "bench-external", "DESTINATION_KMS_KEY_ID": world.dst_key,
                "S3_FORCE_PATH_STYLE": "true", "SYNC_CONCURRENCY": str(CONCURRENCY), "RUST_LOG": "warn"}
    replicator = os.environ.get("BENCH_REPLICATOR", os.path.join(ROOT, "target", "release", "replicator"))
    sse_aws = ["--sse", "aws:kms", "--sse-kms-key-id", world.dst_key] if world.kms else []
    sse_rclone = ["--s3-server-side-encryption", "aws:kms", "--s3-sse-kms-key-id", world.dst_key] if world.kms else []
    aws = [os.path.join(ROOT, ".venv-bench", "bin", "aws"), "s3", "sync", f"s3://{src}", f"s3://{dst}",
           *sse_aws, "--only-show-errors"]
    rclone = ["rclone", "sync", f"one:{src}", f"one:{dst}", *sse_rclone, "-q"]
    same = ["--transfers", str(CONCURRENCY), "--checkers", str(CONCURRENCY)]
    found = {
        "replicator (server-side)": ([replicator, "sync"], {**ours_env, "SERVER_SIDE_COPY": "auto"}),
        "replicator (streaming)": ([replicator, "sync"], {**ours_env, "SERVER_SIDE_COPY": "off"}),
        "aws s3 sync": (aws, {**base, "AWS_CONFIG_FILE": aws_config(CONCURRENCY)}),
        "aws s3 sync (defaults)": (aws, base),
        "rclone": (rclone + same, rclone_remote("one", world)),
        "rclone (defaults)": (rclone, rclone_remote("one", world)),
    }
    if size >= 64 * MIB:
        # Two remotes: rclone cannot copy inside the server, so it streams, as the replicator's
        # streaming mode does.
        found["rclone (two remotes, streaming)"] = (
            ["rclone", "sync", f"one:{src}", f"two:{dst}", *sse_rclone, "-q", *same],
            {**rclone_remote("one", world), **rclone_remote("two", world)})
    s3sync = os.path.join(ROOT, ".tools", "bin", "s3sync")
    if os.path.exists(s3sync):
        cmd = [s3sync, "--source-endpoint-url", ep, "--target-endpoint-url", ep,
               "--source-force-path-style", "--target-force-path-style", *sse_aws, f"s3://{src}", f"s3://{dst}"]
        found["s3sync"] = (cmd[:1] + ["--worker-size", str(CONCURRENCY)] + cmd[1:], base)
        found["s3sync (defaults)"] = (cmd, base)
    return found


def defaults(tool):
    return tool.endswith("(defaults)")


def raw_limit(world, bucket, count, size, op):
    """Seconds for GET-only or PUT-only of the workload at high concurrency (Rust SDK), as
    the measuring client times itself (process start-up excluded)."""
    cmd = [os.path.join(ROOT, "target", "release", "measure"), "raw", op, bucket, str(count), str(size)]
    env = {**SRC_CREDS, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": world.ep, "AWS_EC2_METADATA_DISABLED": "true"}
    out = subprocess.run(cmd, env=dict(os.environ, **env), check=True, capture_output=True, text=True).stdout
    return float(re.search(r"raw \w+: .* in ([0-9.]+) s", out).group(1))


# Label prefixes of the tools (a)-(c) run (--tools); empty for all.
ONLY_TOOLS = []


def run_workload(server, name, count, size, reps, with_defaults=True):
    """One workload on a fresh server: populate, raw limits, every tool `reps` times."""
    if server == "moto":
        proc, ep = start_moto()
        world, cleanup = World(ep), None
    else:
        proc, ep, root = start_s3s_fs()
        world, cleanup = PlainWorld(ep, root, start_stub_sts()), root
    rows = []
    try:
        n = 0
        src = world.bucket(world.src, f"bench-src-{random.randrange(1 << 30)}", world.src_key if world.kms else None)
        world.populate(src, count, size)
        raw_get = raw_limit(world, src, count, size, "get")
        raw_bucket = f"{src}-raw"
        raw_put = raw_limit(world, raw_bucket, count, size, "put")
        world.drop(raw_bucket, world.src)
        results = {}
        for rep in range(reps):
            order = [t for t in tools(world, src, "x", size) if (with_defaults or not defaults(t))
                     and (not ONLY_TOOLS or any(t.startswith(p) for p in ONLY_TOOLS))]
            random.Random(rep).shuffle(order)  # alternate tools between repetitions
            for tool in order:
                n += 1
                dst = world.bucket(world.dst, f"bench-dst-{n}-{random.randrange(1 << 30)}", world.dst_key)
                cmd, env = tools(world, src, dst, size)[tool]
                before = requests_served(ep)
                wall, cpu, rss = timed(cmd, env)
                after = requests_served(ep)
                reqs = None if before is None else (after - before) / count
                got, total = world.count(dst)
                assert got == count and total == count * size, f"{tool}: {got} objects, {total} bytes"
                world.drop(dst)
                results.setdefault(tool, []).append((wall, cpu, rss, reqs))
                shown = "n/a" if reqs is None else f"{reqs:.1f}"
                print(f"[{server}] {name} rep {rep + 1} {tool}: {wall:.2f} s, {cpu:.2f} s CPU, {rss // 1024} MiB, "
                      f"{shown} req/object", flush=True)
        mib = count * size / MIB
        limit = min(mib / raw_get, mib / raw_put)
        # The reference: the faster of the replicator's modes measured here.
        ours = min(statistics.median(w for w, _, _, _ in runs) for tool, runs in results.items()
                   if tool.startswith("replicator"))
        for tool, runs in results.items():
            walls = [w for w, _, _, _ in runs]
            med = statistics.median(walls)
            reqs = [q for _, _, _, q in runs if q is not None]
            rows.append({
                "server": server, "workload": name, "tool": tool, "median_s": med, "min_s": min(walls),
                "max_s": max(walls), "mib_s": mib / med, "obj_s": count / med, "ours_speedup": med / ours,
                "cpu_s": statistics.median(c for _, c, _, _ in runs),
                "pct_limit": 100 * (mib / med) / limit, "rss_mib": max(r for _, _, r, _ in runs) / 1024,
                "req_per_obj": statistics.median(reqs) if reqs else None,
                "raw_get_mib_s": mib / raw_get, "raw_put_mib_s": mib / raw_put,
                "raw_get_obj_s": count / raw_get, "raw_put_obj_s": count / raw_put,
            })
    finally:
        if server == "moto":
            proc.stdin.close()
        else:
            proc.terminate()
        proc.wait()
        if cleanup:
            shutil.rmtree(cleanup, ignore_errors=True)
    return rows


def verify_tools(world, src, dst):
    """Every verifier's command and environment, by label: `replicator verify` HEAD-only,
    `rclone check` (size and hash) and s3sync's check mode, on the same two buckets."""
    base = {**SRC_CREDS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": world.ep,
            "AWS_EC2_METADATA_DISABLED": "true"}
    ours = {**base, "SOURCE_BUCKET": src, "DESTINATION_BUCKET": dst, "DESTINATION_ROLE_ARN": ROLE,
            "DESTINATION_EXTERNAL_ID": "bench-external", "DESTINATION_KMS_KEY_ID": world.dst_key,
            "S3_FORCE_PATH_STYLE": "true", "VERIFY_CONCURRENCY": str(CONCURRENCY), "RUST_LOG": "warn"}
    found = {
        "replicator verify (HEAD-only)": ([os.environ.get("BENCH_REPLICATOR", os.path.join(ROOT, "target", "release", "replicator")), "verify"], ours),
    }
    if shutil.which("rclone"):
        found["rclone check"] = (["rclone", "check", f"one:{src}", f"one:{dst}", "-q", "--checkers", str(CONCURRENCY),
                                  "--exclude", ".s3-fallback-replicator/**"],
                                 rclone_remote("one", world))
    s3sync = os.path.join(ROOT, ".tools", "bin", "s3sync")
    if os.path.exists(s3sync):
        found["s3sync --check (report mode)"] = (
            [s3sync, "--source-endpoint-url", world.ep, "--target-endpoint-url", world.ep, "--source-force-path-style",
             "--target-force-path-style", "--worker-size", str(CONCURRENCY), "--report-sync-status",
             f"s3://{src}", f"s3://{dst}"], base)
    return found


def run_verify(count, reps):
    """Workload (v): HEAD-only verification of `count` x 4 KiB replicated by the replicator
    (CHECKSUM_ALGORITHM=CRC32, the sources' own algorithm, so HEADs prove the bytes), on moto:
    objects/s, peak RSS and requests per object of each verifier."""
    proc, ep = start_moto()
    world = World(ep)
    rows = []
    try:
        src = world.bucket(world.src, f"bench-src-{random.randrange(1 << 30)}", world.src_key)
        world.populate(src, count, 4096)
        dst = world.bucket(world.dst, f"bench-dst-{random.randrange(1 << 30)}", world.dst_key)
        cmd, env = tools(world, src, dst)["replicator (streaming)"]
        timed(cmd, {**env, "CHECKSUM_ALGORITHM": "CRC32"})
        results = {}
        for rep in range(reps):
            order = list(verify_tools(world, src, dst))
            random.Random(rep).shuffle(order)
            for tool in order:
                cmd, env = verify_tools(world, src, dst)[tool]
                before = requests_served(ep)
                # A peer that exits non-zero on differences (rclone: SSE-KMS ETags are not MD5s)
                # still did its work; the replicator must find none.
                wall, cpu, rss = timed(cmd, env, allow_failure=not tool.startswith("replicator"))
                reqs = (requests_served(ep) - before) / count if before is not None else None
                results.setdefault(tool, []).append((wall, cpu, rss, reqs))
                print(f"[moto] (v) rep {rep + 1} {tool}: {wall:.2f} s, {count / wall:.0f} objects/s, "
                      f"{rss // 1024} MiB, {reqs if reqs is None else round(reqs, 2)} req/object", flush=True)
        for tool, runs in results.items():
            med = statistics.median(w for w, _, _, _ in runs)
            reqs = [q for _, _, _, q in runs if q is not None]
            rows.append({"tool": tool, "median_s": med, "obj_s": count / med,
                         "cpu_s": statistics.median(c for _, c, _, _ in runs),
                         "rss_mib": max(r for _, _, r, _ in runs) / 1024,
                         "req_per_obj": statistics.median(reqs) if reqs else None})
    finally:
        proc.stdin.close()
        proc.wait()
    lines = [f"| workload | verifier | median wall (s) | objects/s | client CPU (s) | peak RSS (MiB) | requests/object |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        reqs = "n/a" if r["req_per_obj"] is None else f"{r['req_per_obj']:.2f}"
        lines.append(f"| (v) {count} x 4 KiB | {r['tool']} | {r['median_s']:.2f} | {r['obj_s']:.0f} | {r['cpu_s']:.2f} | "
                     f"{r['rss_mib']:.0f} | {reqs} |")
    return lines


def verdicts(rows):
    """The issue's targets, checked against the medians; each says met or NOT met."""
    out = []
    by = {(r["server"], r["workload"][:3], r["tool"]): r for r in rows}
    for server in sorted({r["server"] for r in rows}):
        mine = [r for (s_, w, t), r in by.items() if s_ == server and w == "(b)" and t.startswith("replicator")]
        ours = min(mine, key=lambda r: r["median_s"]) if mine else {}
        for peer, target in [("s3sync", 1.0), ("aws s3 sync", 3.0), ("rclone", 2.0)]:
            theirs = by.get((server, "(b)", peer))
            if ours and theirs:
                ratio = theirs["median_s"] / ours["median_s"]
                out.append(f"- [{server}] (b) vs {peer} at the same concurrency ({CONCURRENCY}): {ratio:.2f}x "
                           f"(target >= {target}x): " + ("met" if ratio >= target else "NOT met"))
        for tool in ["replicator (server-side)", "replicator (streaming)"]:
            a = by.get((server, "(a)", tool))
            if a:
                out.append(f"- [{server}] (a) {tool}: {a['pct_limit']:.0f}% of min(raw GET, raw PUT) (target >= 90%): "
                           + ("met" if a["pct_limit"] >= 90 else "NOT met")
                           + f"; peak RSS {a['rss_mib']:.0f} MiB (target <= 128): " + ("met" if a["rss_mib"] <= 128 else "NOT met"))
    return out


def function_facts():
    """The arm64 Lambda binaries' sizes (scripts/build-lambdas) and the event copier's init,
    cold start to its first Runtime API poll (the x86_64 release build of the same code)."""
    out = []
    for fn in ["event-copier", "scheduled-sync"]:
        path = os.path.join(ROOT, "target", "lambda", fn, "bootstrap")
        if os.path.exists(path):
            size = os.path.getsize(path)
            verdict = ("; target <= 10 MiB: " + ("met" if size <= 10 * MIB else "NOT met")) if fn == "event-copier" else ""
            out.append(f"- {fn} arm64 bootstrap, stripped: {size:,} bytes = {size / MIB:.2f} MiB{verdict}")
    measure = os.path.join(ROOT, "target", "release", "measure")
    copier = os.path.join(ROOT, "target", "release", "event-copier")
    init = subprocess.run([measure, "init", copier, "15"], check=True, capture_output=True, text=True).stdout.strip()
    out.append(f"- event-copier {init.split(': ', 1)[1]} (x86_64 release build; cold start to the first Runtime API poll)")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--small-count", type=int, default=10_000)
    ap.add_argument("--medium-count", type=int, default=200)
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--servers", default="s3s-fs,moto", help="comma-separated: s3s-fs, moto")
    ap.add_argument("--workloads", default="a,b,c,v", help="comma-separated: a, b, c, v (verification)")
    ap.add_argument("--verify-count", type=int, default=10_000, help="objects of workload v")
    ap.add_argument("--no-defaults", action="store_true", help="skip the peers' runs at their own defaults")
    ap.add_argument("--tools", default="", help="comma-separated label prefixes: run only these tools in (a)-(c)")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    args = ap.parse_args()
    ONLY_TOOLS.extend(t for t in args.tools.split(",") if t)
    workloads = [
        ("(a) 1 x {} MiB".format(args.large_mib), 1, args.large_mib * MIB),
        ("(b) {} x 4 KiB".format(args.small_count), args.small_count, 4096),
        ("(c) {} x 8 MiB".format(args.medium_count), args.medium_count, 8 * MIB),
    ]
    verify = "v" in args.workloads.split(",")
    workloads = [w for w in workloads if w[0][1] in args.workloads.split(",")]
    rows = []
    for server in args.servers.split(","):
        for name, count, size in workloads:
            rows += run_workload(server, name, count, size, args.reps, not args.no_defaults)
    lines = [
        "| server | workload | tool | median wall (s) | spread (s) | client CPU (s) | MiB/s | objects/s | the replicator is faster by | % of min(raw GET, raw PUT) | peak RSS (MiB) | requests/object |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        reqs = "n/a" if r["req_per_obj"] is None else f"{r['req_per_obj']:.1f}"
        lines.append(
            f"| {r['server']} | {r['workload']} | {r['tool']} | {r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} | "
            f"{r['cpu_s']:.2f} | {r['mib_s']:.1f} | {r['obj_s']:.0f} | {r['ours_speedup']:.2f}x | {r['pct_limit']:.0f}% | "
            f"{r['rss_mib']:.0f} | {reqs} |")
    raw = sorted({(r["server"], r["workload"], round(r["raw_get_mib_s"], 1), round(r["raw_put_mib_s"], 1),
                   round(r["raw_get_obj_s"]), round(r["raw_put_obj_s"])) for r in rows})
    lines += ["", "| server | workload | raw GET-only MiB/s (objects/s) | raw PUT-only MiB/s (objects/s) |", "|---|---|---|---|"]
    lines += [f"| {s_} | {w} | {g} ({go}) | {p} ({po}) |" for s_, w, g, p, go, po in raw]
    if rows:
        lines += ["", "Targets:", *verdicts(rows), *function_facts()]
    else:
        lines = []
    if verify:
        lines += ["", *run_verify(args.verify_count, args.reps)]
    table = "\n".join(lines)
    print(table)
    with open(args.out + ".table", "w") as f:
        f.write(table + "\n")
    json.dump(rows, open(args.out + ".json", "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
