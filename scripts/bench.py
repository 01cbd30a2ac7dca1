#!/usr/bin/env python3
"""Benchmark: this replicator against `aws s3 sync`, rclone and s3sync, bucket to bucket on
the same local S3 server (moto: versioning, tags, SSE-KMS), identical workloads, alternating
tools, several repetitions; plus the server's raw GET-only and PUT-only throughput measured
with a Rust client at high concurrency (`measure raw`). Prints a Markdown table (and writes
it to --out). Run through `./scripts/bench` which installs everything first."""

import argparse
import concurrent.futures
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, ".venv", "bin", "python")
REGION = "us-east-1"
SRC_CREDS = {"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "bench-secret"}
ROLE = "arn:aws:iam::222222222222:role/replicator-destination"
MIB = 1024 * 1024


def start_moto():
    p = subprocess.Popen([PY, os.path.join(ROOT, "tests", "moto_runner.py")],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    port = int(p.stdout.readline())
    return p, f"http://127.0.0.1:{port}"


def requests_served(endpoint):
    with urllib.request.urlopen(f"{endpoint}/_bench/requests") as r:
        return int(r.read())


class World:
    def __init__(self, endpoint):
        self.ep = endpoint
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
        blob = random.Random(size).randbytes(size)

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


def timed(cmd, env):
    """Wall time and peak RSS (KiB) of a command, from /usr/bin/time -v."""
    full_env = dict(os.environ)
    full_env.pop("AWS_CA_BUNDLE", None)
    full_env.update(env)
    started = time.monotonic()
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], env=full_env, capture_output=True, text=True)
    wall = time.monotonic() - started
    if out.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return wall, rss


def tools(world, src, dst):
    ep = world.ep
    base = {**SRC_CREDS, "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": ep,
            "AWS_EC2_METADATA_DISABLED": "true"}
    ours_env = {**base, "SOURCE_BUCKET": src, "DESTINATION_BUCKET": dst, "DESTINATION_ROLE_ARN": ROLE,
                "DESTINATION_EXTERNAL_ID": "bench-external", "DESTINATION_KMS_KEY_ID": world.dst_key,
                "S3_FORCE_PATH_STYLE": "true", "SYNC_CONCURRENCY": "64", "RUST_LOG": "warn"}
    replicator = os.path.join(ROOT, "target", "release", "replicator")
    found = {
        "replicator (server-side)": ([replicator, "sync"], {**ours_env, "SERVER_SIDE_COPY": "auto"}),
        "replicator (streaming)": ([replicator, "sync"], {**ours_env, "SERVER_SIDE_COPY": "off"}),
        "aws s3 sync": ([os.path.join(ROOT, ".venv-bench", "bin", "aws"), "s3", "sync", f"s3://{src}", f"s3://{dst}",
                         "--sse", "aws:kms", "--sse-kms-key-id", world.dst_key, "--only-show-errors"], base),
        "rclone": (["rclone", "sync", f"moto:{src}", f"moto:{dst}", "--transfers", "32", "--checkers", "32",
                    "--s3-server-side-encryption", "aws:kms", "--s3-sse-kms-key-id", world.dst_key, "-q"],
                   {"RCLONE_CONFIG_MOTO_TYPE": "s3", "RCLONE_CONFIG_MOTO_PROVIDER": "Other",
                    "RCLONE_CONFIG_MOTO_ENDPOINT": ep, "RCLONE_CONFIG_MOTO_REGION": REGION,
                    "RCLONE_CONFIG_MOTO_ACCESS_KEY_ID": SRC_CREDS["AWS_ACCESS_KEY_ID"],
                    "RCLONE_CONFIG_MOTO_SECRET_ACCESS_KEY": SRC_CREDS["AWS_SECRET_ACCESS_KEY"],
                    "RCLONE_CONFIG_MOTO_FORCE_PATH_STYLE": "true"}),
    }
    s3sync = os.path.join(ROOT, ".tools", "bin", "s3sync")
    if os.path.exists(s3sync):
        found["s3sync"] = ([s3sync, "--source-endpoint-url", ep, "--target-endpoint-url", ep,
                            "--source-force-path-style", "--target-force-path-style",
                            "--sse", "aws:kms", "--sse-kms-key-id", world.dst_key,
                            f"s3://{src}", f"s3://{dst}"], base)
    return found


def raw_limit(world, bucket, count, size, op):
    """Seconds for GET-only or PUT-only of the workload at high concurrency (Rust SDK), as
    the measuring client times itself (process start-up excluded)."""
    cmd = [os.path.join(ROOT, "target", "release", "measure"), "raw", op, bucket, str(count), str(size)]
    env = {**SRC_CREDS, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": world.ep, "AWS_EC2_METADATA_DISABLED": "true"}
    out = subprocess.run(cmd, env=dict(os.environ, **env), check=True, capture_output=True, text=True).stdout
    return float(re.search(r"in ([0-9.]+) s", out).group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--small-count", type=int, default=10_000)
    ap.add_argument("--medium-count", type=int, default=200)
    ap.add_argument("--large-mib", type=int, default=1024)
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "BENCHMARKS.md"))
    args = ap.parse_args()
    workloads = [
        ("(a) 1 x {} MiB".format(args.large_mib), 1, args.large_mib * MIB),
        ("(b) {} x 4 KiB".format(args.small_count), args.small_count, 4096),
        ("(c) {} x 8 MiB".format(args.medium_count), args.medium_count, 8 * MIB),
    ]
    rows = []
    for name, count, size in workloads:
        moto, ep = start_moto()  # a fresh server per workload keeps moto's memory in check
        try:
            world = World(ep)
            n = 0
            src = world.bucket(world.src, f"bench-src-{random.randrange(1 << 30)}", world.src_key)
            world.populate(src, count, size)
            raw_get = raw_limit(world, src, count, size, "get")
            raw_put = raw_limit(world, f"{src}-raw", count, size, "put")
            results = {}
            for rep in range(args.reps):
                order = list(tools(world, src, "x").keys())
                random.Random(rep).shuffle(order)  # alternate tools between repetitions
                for tool in order:
                    n += 1
                    dst = world.bucket(world.dst, f"bench-dst-{n}-{random.randrange(1 << 30)}", world.dst_key)
                    cmd, env = tools(world, src, dst)[tool]
                    before = requests_served(ep)
                    wall, rss = timed(cmd, env)
                    reqs = requests_served(ep) - before
                    got, total = world.count(dst)
                    assert got == count and total == count * size, f"{tool}: {got} objects, {total} bytes"
                    results.setdefault(tool, []).append((wall, rss, reqs / count))
                    print(f"{name} rep {rep + 1} {tool}: {wall:.2f} s, {rss // 1024} MiB, {reqs / count:.1f} req/object", flush=True)
            limit = min(count * size / MIB / raw_get, count * size / MIB / raw_put)
            ours = statistics.median(w for w, _, _ in results["replicator (server-side)"])
            for tool, runs in results.items():
                walls = [w for w, _, _ in runs]
                med = statistics.median(walls)
                mib_s = count * size / MIB / med
                rows.append({
                    "workload": name, "tool": tool, "median_s": med, "min_s": min(walls), "max_s": max(walls),
                    "mib_s": mib_s, "obj_s": count / med, "ours_speedup": med / ours,
                    "pct_limit": 100 * mib_s / limit, "rss_mib": max(r for _, r, _ in runs) / 1024,
                    "req_per_obj": statistics.median(q for _, _, q in runs),
                    "raw_get_mib_s": count * size / MIB / raw_get, "raw_put_mib_s": count * size / MIB / raw_put,
                })
        finally:
            moto.stdin.close()
            moto.wait()
    lines = [
        "| workload | tool | median wall (s) | spread (s) | MiB/s | objects/s | replicator (server-side) is faster by | % of min(raw GET, raw PUT) | peak RSS (MiB) | requests/object |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['workload']} | {r['tool']} | {r['median_s']:.2f} | {r['min_s']:.2f}–{r['max_s']:.2f} | {r['mib_s']:.1f} | "
            f"{r['obj_s']:.0f} | {r['ours_speedup']:.2f}x | {r['pct_limit']:.0f}% | {r['rss_mib']:.0f} | {r['req_per_obj']:.1f} |")
    raw = sorted({(r["workload"], round(r["raw_get_mib_s"], 1), round(r["raw_put_mib_s"], 1)) for r in rows})
    lines.append("")
    lines.append("| workload | raw GET-only MiB/s | raw PUT-only MiB/s |")
    lines.append("|---|---|---|")
    lines += [f"| {w} | {g} | {p} |" for w, g, p in raw]
    table = "\n".join(lines)
    print(table)
    with open(args.out + ".table", "w") as f:
        f.write(table + "\n")
    json.dump(rows, open(args.out + ".json", "w"), indent=1)


if __name__ == "__main__":
    sys.exit(main())
