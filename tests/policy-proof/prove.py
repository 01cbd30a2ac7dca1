"""The policy proof: every request the engine sent during the end-to-end suite (recorded by
tests/moto_runner.py in REPLICATOR_REQUEST_LOG), mapped to the IAM request AWS would
authorise — principal, action, resource ARN and the condition keys that matter
(kms:ViaService, s3:prefix, sts:ExternalId, aws:PrincipalArn, aws:CurrentTime) — and
evaluated with @cloud-copilot/iam-simulate against the policies of the world that sent it:
both templates rendered for that world (render.py), and `replicator policies` for it.

Fails when a request would be denied, and when a granted action no request used is not in
UNUSED_BUT_NEEDED with its reason. Before that, checks the evaluator on requests it must deny.

    prove.py LOG_DIR REPLICATOR_BINARY
"""

import json
import subprocess
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from render import Stack

HERE = Path(__file__).resolve().parent
SOURCE_ACCOUNT, DESTINATION_ACCOUNT, REGION = "123456789012", "222222222222", "us-east-1"
SECOND_DESTINATION_ACCOUNT = "333333333333"  # a three-account world's second destination
SECOND_DESTINATION_UNPROVEN = ("the second destination of a three-account world (tests/src/accounts.rs): the proof "
                               "renders one destination's templates per world, not a rule set's several")
FUNCTION_ROLE = f"arn:aws:iam::{SOURCE_ACCOUNT}:role/s3-fallback-replicator-functions"
DOCTOR = f"arn:aws:iam::{SOURCE_ACCOUNT}:user/moto"
DESTINATION_ROLE = f"arn:aws:iam::{DESTINATION_ACCOUNT}:role/replicator-destination"
EXTERNAL_ID = "replicator-test-external-id"  # the destination role's, as lib.rs has it
SOURCE_KEY_ID = "AKIAIOSFODNN7EXAMPLE"  # the tests' source-account credentials
HARNESS_SESSION = "test-admin"  # the harness's own destination session (world.rs)
DOCTOR_SESSION = "replicator-doctor"
VIA_S3 = f"s3.{REGION}.amazonaws.com"
NOW = "2026-01-01T00:00:00Z"

# Granted, and used by no request the engine sends, each for a reason.
UNUSED_BUT_NEEDED = {
    "logs:CreateLogStream": "the Lambda runtime writes the functions' logs with their role",
    "logs:PutLogEvents": "the Lambda runtime writes the functions' logs with their role",
    "sqs:ReceiveMessage": "the SQS event source mapping polls the queue with the function's role",
    "sqs:DeleteMessage": "the SQS event source mapping deletes handled messages with the function's role",
    "sqs:ChangeMessageVisibility": "the SQS event source mapping returns failed messages with the function's role",
    "sqs:GetQueueAttributes": "the SQS event source mapping reads the queue's attributes with the function's role",
    "xray:PutTraceSegments": "the Lambda runtime sends traces when EnableTracing is on",
    "xray:PutTelemetryRecords": "the Lambda runtime sends traces when EnableTracing is on",
    "s3:GetObjectRetention": "a HEAD shows an object's Object Lock mode and retain-until date only to a caller with it (the source's, copied with the replica; the replica's, for a later change and verify's lock-drift; the audit's evidence lock)",
    "s3:GetObjectLegalHold": "a HEAD shows an object's legal hold only to a caller with it (the source's, copied with the replica; the replica's, for a later change and verify's lock-drift)",
}

# Buckets whose requests no recorded world claims yet, each for a reason: proved by nothing,
# printed as UNPROVEN. Any other unclaimed request fails the proof.
UNRECORDED_BUCKETS = [
    ("inventory-", "S3 Inventory reads: the manifest is a run input, not in the world; granted by template.yaml's read-inventory (source) and the destination stack's DestinationInventoryBucketName, not yet evaluated here"),
    ("measure-inventory", "S3 Inventory reads of the memory measurement (tests/src/bin/measure.rs), which records no world"),
    ("multi-dst-", SECOND_DESTINATION_UNPROVEN),
    ("audit-", "the audit's own evidence bucket (AUDIT_BUCKET): the world records it, the bucket index does not yet"),
]

# A KMS key policy that lets IAM policies decide (the templates' ReplicaKey, and what the
# emulator's CreateKey gives both test keys).
def key_policy(account):
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
        "AWS": f"arn:aws:iam::{account}:root"}, "Action": "kms:*", "Resource": "*"}]}


ADMIN = [{"name": "operator", "policy": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}}]


def load(log_dir):
    worlds, requests = [], []
    for f in sorted(Path(log_dir).glob("*.jsonl")):
        for line in f.read_text().splitlines():
            r = json.loads(line)
            (worlds if "world" in r else requests).append(r.get("world", r))
    return worlds, requests


def lock_actions(r, o):
    """A write that sets Object Lock also needs the lock's own permissions ("Object Lock
    considerations": x-amz-object-lock-mode and -retain-until-date need
    s3:PutObjectRetention, x-amz-object-lock-legal-hold needs s3:PutObjectLegalHold,
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html)."""
    out = []
    if r.get("lock_retention"):
        out.append(("s3:PutObjectRetention", o, {}))
    if r.get("lock_legal_hold"):
        out.append(("s3:PutObjectLegalHold", o, {}))
    return out


def split_path(path):
    parts = path.lstrip("/").split("/", 1)
    return unquote(parts[0]), unquote(parts[1]) if len(parts) > 1 and parts[1] else None


def s3_actions(r):
    """[(action, resource, context)] an S3 request needs, SSE-KMS use by S3 included."""
    method, query = r["method"], parse_qs(r["query"], keep_blank_values=True)
    bucket, key = split_path(r["path"])
    b, o = f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/{key}"
    versioned = "versionId" in query
    out = []
    if key is None:
        if "uploads" in query:
            out.append(("s3:ListBucketMultipartUploads", b, {}))
        elif "versions" in query:
            out.append(("s3:ListBucketVersions", b, {"s3:prefix": query.get("prefix", [""])[0]}))
        elif "versioning" in query:
            out.append(("s3:GetBucketVersioning", b, {}))
        elif "encryption" in query:
            out.append(("s3:GetEncryptionConfiguration", b, {}))
        elif "replication" in query:
            out.append(("s3:GetReplicationConfiguration", b, {}))
        elif "notification" in query:
            out.append(("s3:GetBucketNotification", b, {}))
        elif "object-lock" in query:
            out.append(("s3:GetBucketObjectLockConfiguration", b, {}))
        elif method in ("GET", "HEAD"):
            out.append(("s3:ListBucket", b, {"s3:prefix": query.get("prefix", [""])[0]}))
        else:
            return None
        return out
    copy = r.get("copy_source")
    if "uploadId" in query:
        upload = {"PUT": "s3:PutObject", "POST": "s3:PutObject", "DELETE": "s3:AbortMultipartUpload",
                  "GET": "s3:ListMultipartUploadParts"}[method]
        out.append((upload, o, {}))
        if method == "POST":  # completing an SSE-KMS upload decrypts its parts' data key
            out.append(("kms:Decrypt", "DESTINATION_KEY", {"kms:ViaService": VIA_S3}))
    elif "uploads" in query:
        out.append(("s3:PutObject", o, {}))
        out.extend(lock_actions(r, o))
    elif "retention" in query:
        out.append({"GET": ("s3:GetObjectRetention", o, {}), "PUT": ("s3:PutObjectRetention", o, {})}[method])
    elif "legal-hold" in query:
        out.append({"GET": ("s3:GetObjectLegalHold", o, {}), "PUT": ("s3:PutObjectLegalHold", o, {})}[method])
    elif "tagging" in query:
        out.append({"GET": ("s3:GetObjectVersionTagging" if versioned else "s3:GetObjectTagging", o, {}),
                    "PUT": ("s3:PutObjectVersionTagging" if versioned else "s3:PutObjectTagging", o, {}),
                    "DELETE": ("s3:DeleteObjectVersionTagging" if versioned else "s3:DeleteObjectTagging", o, {})}[method])
    elif method in ("GET", "HEAD"):
        out.append(("s3:GetObjectVersion" if versioned else "s3:GetObject", o, {}))
        if method == "GET" and r.get("answer_sse_key") and r.get("status", 200) < 300:
            out.append(("kms:Decrypt", r["answer_sse_key"], {"kms:ViaService": VIA_S3}))
    elif method == "PUT":
        out.append(("s3:PutObject", o, {}))
        if r.get("tagging"):
            out.append(("s3:PutObjectTagging", o, {}))
        out.extend(lock_actions(r, o))
    elif method == "DELETE":
        out.append(("s3:DeleteObjectVersion" if versioned else "s3:DeleteObject", o, {}))
    else:
        return None
    if r.get("sse") == "aws:kms" and method in ("PUT", "POST") and "uploadId" not in query:
        out.append(("kms:GenerateDataKey", r.get("sse_key") or "DESTINATION_KEY", {"kms:ViaService": VIA_S3}))
    if copy:
        out.append(("server-side-copy-source", unquote(copy), {}))
    return out


def classify(r):
    """(who, [(action, resource, context)]) for an engine request, or (None, reason)."""
    session = r.get("session")
    action = r.get("action")
    if action == "AssumeRole":
        if r.get("session_name") == HARNESS_SESSION:
            return None, "harness: its own destination session"
        who = "doctor" if r.get("session_name") == DOCTOR_SESSION else "functions"
        return who, [("sts:AssumeRole", r["role_arn"], {"sts:ExternalId": r.get("external_id")})]
    if session == HARNESS_SESSION:
        return None, "harness: checks with its own destination session"
    if session is not None:
        who = "destination-doctor" if session == DOCTOR_SESSION else "destination"
        target = r.get("target") or ""
        if target.startswith("TrentService."):
            return who, [("kms:" + target.split(".", 1)[1], r.get("key_id") or "DESTINATION_KEY", {})]
        if action == "GetRole":
            return who, [("iam:GetRole", f"arn:aws:iam::{DESTINATION_ACCOUNT}:role/{r['role_name']}", {})]
        mapped = s3_actions(r)
        return (who, mapped) if mapped else (None, f"unmapped destination request {r['method']} {r['path']}?{r['query']}")
    if r.get("access_key") != SOURCE_KEY_ID:
        return None, "not signed by the tests' source credentials"
    target = r.get("target") or ""
    if target in ("AmazonSQS.SendMessageBatch", "AmazonSQS.SendMessage"):
        return "functions", [("sqs:SendMessage", r.get("queue_url"), {})]
    if target or action:
        return None, "source account, not S3: harness setup or the operator's doctor (its own credentials)"
    query = parse_qs(r["query"], keep_blank_values=True)
    # RESTORE_ARCHIVED's RestoreObject is the engine's one source write. The harness restores
    # with the same credentials; its requests are held to the same grant.
    if r["method"] == "POST" and "restore" in query:
        bucket, key = split_path(r["path"])
        return "functions", [("s3:RestoreObject", f"arn:aws:s3:::{bucket}/{key}", {})]
    if r["method"] not in ("GET", "HEAD") or r["path"] in ("/", ""):
        return None, "source account write: harness setup (the engine never writes to the source but to restore)"
    if any(q in query for q in ("versioning", "encryption", "replication", "notification", "object-lock")):
        return None, "the doctor's source checks, with the operator's own credentials"
    mapped = s3_actions(r)
    return ("functions", mapped) if mapped else (None, "unmapped source request")


def worlds_for(r, by_bucket, every):
    """The worlds whose configuration may have sent `r`."""
    target = r.get("target") or ""
    if target.startswith("AmazonSQS."):
        return [w for w in every if w.get("SYNC_QUEUE_URL") == r.get("queue_url")][:1]
    if target.startswith("TrentService."):
        key = r.get("key_id") or ""
        return [w for w in every if key and w["destination_key_arn"].endswith(key)][:1]
    if r.get("action") in ("AssumeRole", "GetRole"):
        return every[:1]
    bucket = split_path(r["path"])[0]
    return list(by_bucket.get(bucket, {}).values())


def world_key(w):
    keep = ["SOURCE_BUCKET", "DESTINATION_BUCKET", "KEY_PREFIX", "DESTINATION_PREFIX", "REPLICATE_DELETES",
            "SYNC_DELETE", "SYNC_QUEUE_URL", "DESTINATION_KMS_KEY_ID", "source_key_arn", "DESTINATION_EXTERNAL_ID"]
    return tuple(w.get(k, "") for k in keep)


class PolicySet:
    """What grants a world's requests: from the templates, or from `replicator policies`."""

    def __init__(self, name, functions, trust, destination):
        self.name, self.functions, self.trust, self.destination = name, functions, trust, destination


def template_policies(w):
    deletes = "true" if "true" in (w.get("REPLICATE_DELETES"), w.get("SYNC_DELETE")) else "false"
    source = Stack("template.yaml", {
        "SourceBucket": w["SOURCE_BUCKET"], "SourceKmsKeyArn": w["source_key_arn"], "KeyPrefix": w.get("KEY_PREFIX", ""),
        "DestinationBucket": w["DESTINATION_BUCKET"], "DestinationAccountId": DESTINATION_ACCOUNT,
        "DestinationRoleArn": DESTINATION_ROLE, "DestinationExternalId": w.get("DESTINATION_EXTERNAL_ID", "x"),
        "DestinationKmsKeyArn": w["destination_key_arn"], "DestinationPrefix": w.get("DESTINATION_PREFIX", ""),
        "ReplicateDeletes": w.get("REPLICATE_DELETES", "false"), "SyncFanOut": "true" if w.get("SYNC_QUEUE_URL") else "false",
    }, SOURCE_ACCOUNT)
    destination = Stack("deploy/destination-account.yaml", {
        "SourceAccountId": SOURCE_ACCOUNT, "ExternalId": w.get("DESTINATION_EXTERNAL_ID", "x"),
        "DestinationBucketName": w["DESTINATION_BUCKET"], "DestinationPrefix": w.get("DESTINATION_PREFIX", ""),
        "ExistingKmsKeyArn": w["destination_key_arn"], "AllowDeletes": deletes, "RoleName": "replicator-destination",
        "DoctorPrincipalArn": DOCTOR, "DoctorTrustExpires": "2099-01-01T00:00:00Z",
    }, DESTINATION_ACCOUNT)
    s = {name: doc for name, _, doc in source.policies()}
    d = {name: doc for name, _, doc in destination.policies()}
    functions = [{"name": n, "policy": doc} for n, doc in s.items() if n.startswith("FunctionRole.") and n != "FunctionRole.trust"]
    return PolicySet("templates", functions, d["DestinationRole.trust"],
                     [{"name": "write-replicas", "policy": d["DestinationRole.write-replicas"]}])


def cli_policies(binary, w):
    args = [binary, "policies", "--json", "--show-external-id", "--function-role-arn", FUNCTION_ROLE,
            "--source-kms-key-arn", w["source_key_arn"], "--destination-kms-key-arn", w["destination_key_arn"]]
    for k, v in w.items():
        if k.isupper() and k != "AWS_LAMBDA_FUNCTION_NAME":
            args += ["--" + k.lower().replace("_", "-"), v]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    sections = json.loads(out)

    def section(prefix):
        return next(doc for title, doc in sections.items() if title.startswith(prefix))

    return PolicySet("replicator policies",
                     [{"name": "functions", "policy": section("source account: the functions' role policy")}],
                     section("destination account: the destination role's trust policy"),
                     [{"name": "destination", "policy": section("destination account: the destination role's permissions")}])


def simulation(policies, w, who, action, resource, context):
    """The iam-simulate input for one request, or None when no shipped policy is meant to
    grant it."""
    if resource == "DESTINATION_KEY":
        resource = w["destination_key_arn"]
    context = {k: v for k, v in context.items() if k != "expect"}
    context["aws:CurrentTime"] = NOW
    if action == "sts:AssumeRole" and context.get("sts:ExternalId") is None:
        del context["sts:ExternalId"]
    if who in ("functions", "doctor"):
        principal = FUNCTION_ROLE if who == "functions" else DOCTOR
        identity = policies.functions if who == "functions" else ADMIN
        if action == "sts:AssumeRole":
            context["aws:PrincipalArn"] = principal
            if who == "doctor" and policies.name != "templates":
                return None  # the doctor's expiring trust is the template's; the CLI prints the functions'
            return dict(principal=principal, action=action, resource=resource, account=DESTINATION_ACCOUNT,
                        context=context, identity=identity, resourcePolicy=policies.trust)
        if action == "sqs:SendMessage":
            # The fan-out queue is the stack's own CopierQueue; `replicator policies` leaves
            # the queue to the template, which creates it.
            if resource != w.get("SYNC_QUEUE_URL") or policies.name != "templates":
                return None
            resource = f"arn:aws:sqs:{REGION}:{SOURCE_ACCOUNT}:replicator-CopierQueue"
        account = SOURCE_ACCOUNT
        resource_policy = key_policy(SOURCE_ACCOUNT) if action.startswith("kms:") else None
        return dict(principal=principal, action=action, resource=resource, account=account, context=context,
                    identity=identity, resourcePolicy=resource_policy)
    session = f"arn:aws:sts::{DESTINATION_ACCOUNT}:assumed-role/replicator-destination/session"
    context["aws:PrincipalArn"] = DESTINATION_ROLE
    resource_policy = key_policy(DESTINATION_ACCOUNT) if action.startswith("kms:") else None
    return dict(principal=session, action=action, resource=resource, account=DESTINATION_ACCOUNT, context=context,
                identity=policies.destination, resourcePolicy=resource_policy)


def evaluate(sims):
    """Runs iam-simulate on every distinct simulation; answers [(result, allowing Sids)]."""
    keys = [json.dumps(sim, sort_keys=True) for sim in sims]
    distinct = list(dict.fromkeys(keys))
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        f.write("[" + ",".join(distinct) + "]")
        f.flush()
        out = subprocess.run(["node", str(HERE / "evaluate.mjs"), f.name], check=True, capture_output=True, text=True)
    answers = dict(zip(distinct, json.loads(out.stdout)))
    return [answers[k] for k in keys]


def self_check():
    """Requests the evaluator must deny, or it proves nothing."""
    key = f"arn:aws:kms:{REGION}:{DESTINATION_ACCOUNT}:key/k"
    grant = [{"name": "g", "policy": {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "kms:GenerateDataKey", "Resource": key,
         "Condition": {"StringEquals": {"kms:ViaService": VIA_S3}}}]}}]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{SOURCE_ACCOUNT}:root"},
             "Action": "sts:AssumeRole", "Condition": {"StringEquals": {"sts:ExternalId": "x"},
             "ArnEquals": {"aws:PrincipalArn": FUNCTION_ROLE}, "DateLessThan": {"aws:CurrentTime": "2030-01-01T00:00:00Z"}}}]}
    assume = [{"name": "a", "policy": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}}]
    role = DESTINATION_ROLE
    cases = [
        (True, dict(principal=role, action="kms:GenerateDataKey", resource=key, account=DESTINATION_ACCOUNT,
                    context={"kms:ViaService": VIA_S3}, identity=grant, resourcePolicy=key_policy(DESTINATION_ACCOUNT))),
        (False, dict(principal=role, action="kms:GenerateDataKey", resource=key, account=DESTINATION_ACCOUNT,
                     context={}, identity=grant, resourcePolicy=key_policy(DESTINATION_ACCOUNT))),
        (False, dict(principal=role, action="kms:GenerateDataKey", resource=key, account=DESTINATION_ACCOUNT,
                     context={"kms:ViaService": "s3.eu-west-1.amazonaws.com"}, identity=grant, resourcePolicy=key_policy(DESTINATION_ACCOUNT))),
        (True, dict(principal=FUNCTION_ROLE, action="sts:AssumeRole", resource=role, account=DESTINATION_ACCOUNT,
                    context={"sts:ExternalId": "x", "aws:PrincipalArn": FUNCTION_ROLE, "aws:CurrentTime": NOW}, identity=assume, resourcePolicy=trust)),
        (False, dict(principal=DOCTOR, action="sts:AssumeRole", resource=role, account=DESTINATION_ACCOUNT,
                     context={"sts:ExternalId": "x", "aws:PrincipalArn": DOCTOR, "aws:CurrentTime": NOW}, identity=assume, resourcePolicy=trust)),
        (False, dict(principal=FUNCTION_ROLE, action="sts:AssumeRole", resource=role, account=DESTINATION_ACCOUNT,
                     context={"sts:ExternalId": "y", "aws:PrincipalArn": FUNCTION_ROLE, "aws:CurrentTime": NOW}, identity=assume, resourcePolicy=trust)),
        (False, dict(principal=FUNCTION_ROLE, action="sts:AssumeRole", resource=role, account=DESTINATION_ACCOUNT,
                     context={"sts:ExternalId": "x", "aws:PrincipalArn": FUNCTION_ROLE, "aws:CurrentTime": "2031-01-01T00:00:00Z"},
                     identity=assume, resourcePolicy=trust)),
    ]
    results = evaluate([c for _, c in cases])
    for (expected, case), (result, _) in zip(cases, results):
        if (result == "Allowed") != expected:
            raise SystemExit(f"the evaluator answered {result} for {case['action']} with {case['context']}: it cannot prove anything")
    print(f"evaluator self-check: {len(cases)} requests answered as IAM would (conditions included)")


def main(log_dir, binary):
    self_check()
    worlds, requests = load(log_dir)
    by_bucket = defaultdict(dict)
    for w in worlds:
        for b in (w["SOURCE_BUCKET"], w["DESTINATION_BUCKET"]):
            by_bucket[b][world_key(w)] = w
    skipped, engine = Counter(), []
    for r in requests:
        who, mapped = classify(r)
        if who is None:
            skipped[mapped] += 1
        else:
            engine.append((r, who, mapped))
    policy_sets = {}
    sims, index, outside, orphans, expected_denials = [], [], Counter(), Counter(), Counter()
    unproven = Counter()
    expect_deny = []
    every = [w for ws in by_bucket.values() for w in ws.values()]
    for r, who, mapped in engine:
        second = f"arn:aws:iam::{SECOND_DESTINATION_ACCOUNT}:"
        if ((r.get("role_arn") if r.get("action") == "AssumeRole" else r.get("session_role")) or "").startswith(second):
            unproven[SECOND_DESTINATION_UNPROVEN + " (its role's requests)"] += 1
            continue
        candidates = worlds_for(r, by_bucket, every)
        if r.get("action") == "AssumeRole" and r.get("external_id") != EXTERNAL_ID:
            expected_denials["AssumeRole with a test's deliberately wrong or missing ExternalId"] += 1
            mapped = [(a, res, {**c, "expect": "deny"}) for a, res, c in mapped]
        if not candidates:
            unrecorded = next((why for prefix, why in UNRECORDED_BUCKETS if split_path(r["path"])[0].startswith(prefix)), None)
            if unrecorded:
                unproven[unrecorded] += 1
            else:
                orphans[f"{r['method']} {r['path']}"[:60]] += 1
            continue
        for action, resource, context in mapped:
            if action == "server-side-copy-source":
                outside["server-side copy: the destination role reads the source (the optional cross-account grant, README Server-side copy)"] += 1
                continue
            for source in ("templates", "replicator policies"):
                # Allowed under any of the configurations its world ran with.
                group = []
                for w in candidates:
                    key = (source, world_key(w))
                    if key not in policy_sets:
                        policy_sets[key] = template_policies(w) if source == "templates" else cli_policies(binary, w)
                    sim = simulation(policy_sets[key], w, who, action, resource, context)
                    if sim is not None:
                        group.append(len(sims))
                        sims.append(sim)
                if group:
                    index.append((source, who, action, resource, context, group, r))
                    expect_deny.append(context.get("expect") == "deny")
    results = evaluate(sims)
    denied, used = [], defaultdict(set)
    for (source, who, action, resource, context, group, r), deny in zip(index, expect_deny):
        allowed = [results[i] for i in group if results[i][0] == "Allowed"]
        if deny:
            if allowed:
                denied.append((source, who, action, resource, context, r, "ALLOWED, though it must be denied"))
            continue
        if not allowed:
            denied.append((source, who, action, resource, context, r, results[group[0]][0]))
        else:
            if who == "functions":
                used[(source, "functions")].add(action)
            elif who.startswith("destination"):
                used[(source, "destination")].add(action)
    print(f"requests recorded: {len(requests)}; the engine's: {len(engine)}; simulations: {len(sims)}")
    for reason, n in sorted(skipped.items()):
        print(f"  not the engine's ({n}): {reason}")
    for reason, n in sorted(outside.items()):
        print(f"  outside the shipped policies ({n}): {reason}")
    for what, n in sorted(expected_denials.items()):
        print(f"  denied, as the test meant ({n}): {what}")
    for what, n in sorted(unproven.items()):
        print(f"  UNPROVEN, known ({n}): {what}")
    for what, n in sorted(orphans.items()):
        print(f"  no world recorded for ({n}): {what}")
    seen = set()
    for source, who, action, resource, context, r, result in denied:
        line = f"DENIED ({source}, {who}) {action} on {resource} {context}: {result} [{r['method']} {r['path']}?{r['query']}]"
        if line not in seen:
            seen.add(line)
            print("  " + line)
    unexplained = []
    granted = defaultdict(set)
    for (source, _), policies in policy_sets.items():
        for role, docs in (("functions", policies.functions), ("destination", policies.destination)):
            for d in docs:
                for s in d["policy"]["Statement"]:
                    if s.get("Effect") == "Allow":
                        acts = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                        granted[(source, role)].update(acts)
    for key in sorted(granted):
        for action in sorted(granted[key] - used[key]):
            why = UNUSED_BUT_NEEDED.get(action)
            if why:
                print(f"  granted, unused ({key[0]}, {key[1]}): {action} — {why}")
            else:
                unexplained.append(f"{key[0]}, {key[1]}: {action}")
                print(f"  UNUSED GRANT ({key[0]}, {key[1]}): {action}")
    distinct = len(seen)
    print(f"policy proof: {distinct} denied request kinds, {len(unexplained)} unexplained unused grants")
    # A request no world claims was evaluated against nothing: that proves nothing.
    return 1 if distinct or unexplained or orphans or not engine else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
