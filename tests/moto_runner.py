"""Starts moto's server on a free loopback port, prints the port, and serves until stdin
closes: when the test process that started it exits, the pipe closes and so does moto.

Some AWS behaviours are put right in front of moto, as AWS has them:
- a request carrying x-amz-expected-bucket-owner (or x-amz-source-expected-bucket-owner for
  the copy source) for a bucket owned by another account is answered 403 AccessDenied, and
  nothing is written;
- a request signed with AssumeRole credentials past their Expiration is answered 400
  ExpiredToken;
- a conditional write or delete (If-Match / If-None-Match) is atomic: moto checks the
  condition and writes without a lock, so two racing writes could both pass; here they take
  turns; and CompleteMultipartUpload honours If-Match (moto ignores it there);
- ListObjectVersions with a prefix copies only the versions under that prefix (moto
  deep-copies every version of every key in the bucket, bodies included, on each call: a
  10,000-object soak ran it out of memory);
- CompleteMultipartUpload of an upload no longer in progress answers 404 NoSuchUpload
  (moto repeats the success);
- CreateMultipartUpload keeps the Object Lock settings and website redirect it was given
  for the object CompleteMultipartUpload makes, and refuses lock settings for a bucket
  without Object Lock (moto drops them);
- a PutObject carrying a checksum value, and a CompleteMultipartUpload carrying a
  full-object one, are refused with 400 BadDigest when the bytes do not match it (moto
  stores the value unchecked);
- CopyObject takes Object Lock settings without a Content-MD5 or checksum header (moto
  asks for one, as PutObject needs; a copy has no body to check);
- ListMultipartUploads reports each upload's initiator (the session ARN for assumed-role
  credentials) and when it was initiated (moto answers a fixed user and 2010 for all);
- GetBucketReplication answers the rules as PutBucketReplication stored them (moto replaces
  each rule's Filter and DeleteMarkerReplication);
- GetBucketVersioning, GetBucketNotificationConfiguration and ListParts answer with the root
  elements S3 documents (VersioningConfiguration, NotificationConfiguration,
  ListPartsResult; moto names them GetBucketVersioningResponse,
  GetBucketNotificationResponse and ListPartsResponse, which strict SDKs such as Rust's
  reject).
Requests are path-style (the tests set S3_FORCE_PATH_STYLE).

For the security tests, GET /_capture answers with what every request carried that matters
to them (JSON lines): method, path, the access key, session token and signature it was
signed with, the expected-owner headers, and for STS AssumeRole the RoleArn and ExternalId.

For the policy proof (tests/policy-proof/prove.py), with REPLICATOR_REQUEST_LOG set to a
directory, each request is also appended to REPLICATOR_REQUEST_LOG/<pid>.jsonl with what
decides its IAM authorisation: the JSON target (KMS, SQS), the KMS KeyId, the SQS QueueUrl,
IAM's RoleName, the SSE-KMS headers, the answer's status and SSE-KMS key, and for a request
signed with AssumeRole credentials the session name and who assumed it; POST /_world records
a test world's configuration there."""

import datetime
import html
import io
import json
import os
import re
import sys
import threading
import time
from collections import deque
from urllib.parse import parse_qs, quote_plus, unquote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.kms.models import kms_backends
from moto.s3.models import FakeKey, S3Backend, s3_backends
from moto.s3.responses import S3Response
from werkzeug.serving import WSGIRequestHandler, make_server

DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>expected-bucket-owner</RequestId></Error>"
)


def owner_of(bucket):
    entry = s3_backends.bucket_accounts.get(bucket)
    return entry[1] if entry else None


SERVED = [0]
SESSION_EXPIRES = {}
SESSION_ARN = {}
UPLOADS_STARTED = {}
# Upload id -> the Object Lock settings and website redirect CreateMultipartUpload carried.
UPLOAD_SETTINGS = {}
LOCK_HEADERS = {
    "HTTP_X_AMZ_OBJECT_LOCK_MODE": "lock_mode",
    "HTTP_X_AMZ_OBJECT_LOCK_RETAIN_UNTIL_DATE": "lock_until",
    "HTTP_X_AMZ_OBJECT_LOCK_LEGAL_HOLD": "lock_legal_status",
}
CHECKSUM_HEADERS = {
    "HTTP_X_AMZ_CHECKSUM_CRC32": "CRC32",
    "HTTP_X_AMZ_CHECKSUM_CRC32C": "CRC32C",
    "HTTP_X_AMZ_CHECKSUM_CRC64NVME": "CRC64NVME",
    "HTTP_X_AMZ_CHECKSUM_SHA1": "SHA1",
    "HTTP_X_AMZ_CHECKSUM_SHA256": "SHA256",
}
LOCK_NOT_ENABLED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InvalidRequest</Code>'
    b"<Message>Bucket is missing Object Lock Configuration</Message><RequestId>lock</RequestId></Error>"
)
CONDITIONAL_WRITES = threading.Lock()
PRECONDITION_FAILED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code>'
    b"<Message>At least one of the pre-conditions you specified did not hold</Message>"
    b"<Condition>If-Match</Condition><RequestId>if-match</RequestId></Error>"
)
NO_SUCH_UPLOAD = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code>'
    b"<Message>The specified upload does not exist. The upload ID may be invalid, or the upload "
    b"may have been aborted or completed.</Message><RequestId>no-such-upload</RequestId></Error>"
)
EXPIRED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ExpiredToken</Code>'
    b"<Message>The provided token has expired.</Message><RequestId>expired</RequestId></Error>"
)
CAPTURED = deque(maxlen=200_000)
REQUEST_LOG = os.environ.get("REPLICATOR_REQUEST_LOG")
LOG_LOCK = threading.Lock()
# Session access key -> (the access key that assumed it, its session name, the role).
SESSIONS = {}


LOG_FILE = open(os.path.join(REQUEST_LOG, f"{os.getpid()}.jsonl"), "a", buffering=1) if REQUEST_LOG else None


def log(record):
    if LOG_FILE:
        line = json.dumps(record) + "\n"
        with LOG_LOCK:
            LOG_FILE.write(line)
SIGNED_BY = re.compile(r"Credential=([^/]+)/")


def capture(environ):
    auth = environ.get("HTTP_AUTHORIZATION", "")
    signer = SIGNED_BY.search(auth)
    seen = {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("PATH_INFO", "/"),
        "query": environ.get("QUERY_STRING", ""),
        "access_key": signer.group(1) if signer else None,
        "expected_owner": environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER"),
        "source_expected_owner": environ.get("HTTP_X_AMZ_SOURCE_EXPECTED_BUCKET_OWNER"),
        "copy_source": environ.get("HTTP_X_AMZ_COPY_SOURCE"),
        "security_token": environ.get("HTTP_X_AMZ_SECURITY_TOKEN"),
        "signature": auth.rsplit("Signature=", 1)[1] if "Signature=" in auth else None,
    }
    seen["target"] = environ.get("HTTP_X_AMZ_TARGET")
    seen["sse"] = environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION")
    seen["sse_key"] = environ.get("HTTP_X_AMZ_SERVER_SIDE_ENCRYPTION_AWS_KMS_KEY_ID")
    seen["tagging"] = environ.get("HTTP_X_AMZ_TAGGING") is not None
    seen["lock_retention"] = "HTTP_X_AMZ_OBJECT_LOCK_MODE" in environ
    seen["lock_legal_hold"] = "HTTP_X_AMZ_OBJECT_LOCK_LEGAL_HOLD" in environ
    form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
    if environ.get("REQUEST_METHOD") == "POST" and seen["path"] == "/" and form:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        fields = parse_qs(body.decode("utf-8", "replace"))
        seen["action"] = fields.get("Action", [None])[0]
        seen["role_arn"] = fields.get("RoleArn", [None])[0]
        seen["external_id"] = fields.get("ExternalId", [None])[0]
        seen["session_name"] = fields.get("RoleSessionName", [None])[0]
        seen["role_name"] = fields.get("RoleName", [None])[0]
    elif REQUEST_LOG and seen["target"] and environ.get("REQUEST_METHOD") == "POST":
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            fields = json.loads(body or b"{}")
        except ValueError:
            fields = {}
        seen["key_id"] = fields.get("KeyId")
        seen["queue_url"] = fields.get("QueueUrl")
    session = SESSIONS.get(seen["access_key"])
    if session:
        seen["assumed_by"], seen["session"], seen["session_role"] = session
    CAPTURED.append(seen)
    return seen


def logged(seen, start_response):
    """start_response that also logs the request with its answer's status and SSE-KMS key."""
    if not REQUEST_LOG:
        return start_response

    def respond(status, headers, exc_info=None):
        answer = {k.lower(): v for k, v in headers}
        record = {k: v for k, v in seen.items() if k not in ("signature", "security_token")}
        record["status"] = int(status.split(" ", 1)[0])
        record["answer_sse_key"] = answer.get("x-amz-server-side-encryption-aws-kms-key-id")
        log(record)
        return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

    return respond


def expected_owner_check(app):
    def middleware(environ, start_response):
        # The benchmark reads how many requests the server answered (requests per object).
        if environ.get("PATH_INFO") == "/_bench/requests":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(SERVED[0]).encode()]
        if environ.get("PATH_INFO") == "/_native/replicate":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            answer = json.dumps(native_replicate(json.loads(body))).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
            return [answer]
        if environ.get("PATH_INFO") == "/_capture":
            body = "".join(json.dumps(c) + "\n" for c in list(CAPTURED)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        if environ.get("PATH_INFO") == "/_world":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            log({"world": json.loads(body)})
            start_response("204 No Content", [])
            return [b""]
        SERVED[0] += 1
        seen = capture(environ)
        start_response = logged(seen, start_response)
        # Credentials from AssumeRole stop working at their Expiration, as on AWS.
        expires = SESSION_EXPIRES.get(seen["access_key"])
        if expires is not None and time.time() > expires:
            start_response("400 Bad Request", [("Content-Type", "application/xml")])
            return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else EXPIRED]
        if seen.get("action") == "AssumeRole":
            return rewrite(app, environ, start_response, remember_session(seen))
        checks = []
        copy_source = environ.get("HTTP_X_AMZ_COPY_SOURCE")
        expected = environ.get("HTTP_X_AMZ_EXPECTED_BUCKET_OWNER")
        path = environ.get("PATH_INFO", "/").lstrip("/")
        if expected and path:
            checks.append((path.split("/", 1)[0], expected))
        source_expected = environ.get("HTTP_X_AMZ_SOURCE_EXPECTED_BUCKET_OWNER")
        if source_expected and copy_source:
            checks.append((unquote(copy_source).lstrip("/").split("/", 1)[0], source_expected))
        # The tests' stand-in for "the destination role may not read this source bucket":
        # server-side copies out of buckets named nocopy-* are denied, as S3 would deny them
        # without a cross-account grant.
        if copy_source and unquote(copy_source).lstrip("/").startswith("nocopy-"):
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [DENIED]
        for bucket, account in checks:
            owner = owner_of(bucket)
            if owner is not None and owner != account:
                start_response("403 Forbidden", [("Content-Type", "application/xml")])
                return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else DENIED]
        state = unusable_key_state(seen["sse_key"], path) if environ.get("REQUEST_METHOD") in ("PUT", "POST") else None
        if state:
            start_response("400 Bad Request", [("Content-Type", "application/xml")])
            return [key_unusable(seen["sse_key"], state)]
        query = environ.get("QUERY_STRING", "")
        if environ.get("REQUEST_METHOD") == "GET" and query == "versioning":
            return rewrite(app, environ, start_response,
                           lambda b: b.replace(b"GetBucketVersioningResponse", b"VersioningConfiguration"))
        # The root is NotificationConfiguration ("GetBucketNotificationConfiguration",
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketNotificationConfiguration.html).
        if environ.get("REQUEST_METHOD") == "GET" and query == "notification":
            return rewrite(app, environ, start_response,
                           lambda b: b.replace(b"GetBucketNotificationResponse", b"NotificationConfiguration"))
        # ListMultipartUploads reports who started each upload and when ("Initiator",
        # "Initiated": https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListMultipartUploads.html).
        if environ.get("REQUEST_METHOD") == "POST" and re.search(r"(^|&)uploads(=|&|$)", query):
            settings = upload_settings(environ)
            if any(k in settings for k in LOCK_HEADERS.values()) and not lock_enabled(path):
                start_response("400 Bad Request", [("Content-Type", "application/xml")])
                return [LOCK_NOT_ENABLED]
            return rewrite(app, environ, start_response, remember_upload(seen["access_key"], settings))
        if copy_source and environ.get("REQUEST_METHOD") == "PUT" and any(h in environ for h in LOCK_HEADERS):
            environ.setdefault("HTTP_X_AMZ_SDK_CHECKSUM_ALGORITHM", "CRC32")
        refused = checksum_refused(environ, path, query, copy_source)
        if refused:
            start_response("400 Bad Request", [("Content-Type", "application/xml")])
            return [bad_digest(refused)]
        serve = app
        if environ.get("REQUEST_METHOD") == "POST" and "uploadId=" in query:
            serve = keeping_upload_settings(app, path, query)
        if environ.get("REQUEST_METHOD") == "GET" and re.search(r"(^|&)uploads(=|&|$)", query):
            return rewrite(app, environ, start_response, report_uploads)
        if environ.get("REQUEST_METHOD") == "GET" and "uploadId=" in query:
            return rewrite(app, environ, start_response, lambda b: b.replace(b"ListPartsResponse", b"ListPartsResult"))
        # CompleteMultipartUpload of an upload that is no longer in progress — completed or
        # aborted — answers 404 NoSuchUpload ("CompleteMultipartUpload", Special errors:
        # https://docs.aws.amazon.com/AmazonS3/latest/API/API_CompleteMultipartUpload.html);
        # moto answers a repeated completion with success.
        if environ.get("REQUEST_METHOD") == "POST" and "uploadId=" in query and not upload_open(path, query):
            start_response("404 Not Found", [("Content-Type", "application/xml")])
            return [NO_SUCH_UPLOAD]
        conditional = environ.get("HTTP_IF_MATCH") or environ.get("HTTP_IF_NONE_MATCH")
        # Conditional deletes (If-Match on DeleteObject) take their turn with the conditional
        # writes, as on S3, where both are atomic ("How to perform conditional deletes",
        # https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-deletes.html).
        if conditional and environ.get("REQUEST_METHOD") in ("PUT", "POST", "DELETE"):
            # The body is read before the turn is taken: a slow or stalled client must not
            # hold every other conditional write up.
            if environ.get("CONTENT_LENGTH"):
                body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
                environ["wsgi.input"] = io.BytesIO(body)
            with CONDITIONAL_WRITES:
                if environ.get("REQUEST_METHOD") == "POST" and "uploadId=" in query and not current_etag_matches(
                        path, environ.get("HTTP_IF_MATCH")):
                    start_response("412 Precondition Failed", [("Content-Type", "application/xml")])
                    return [PRECONDITION_FAILED]
                return list(serve(environ, start_response))
        return serve(environ, start_response)

    return middleware


# The native-replication simulator: the emulator has no replication engine, so the tests
# act as one. POST /_native/replicate {"source_bucket", "key", "version_id",
# "destination_bucket", "status": PENDING|COMPLETED|FAILED, "failure_reason"} sets the source
# version's x-amz-replication-status as S3 reports it; COMPLETED also writes the replica into
# the destination bucket as native replication does — same bytes, user metadata and version
# id, x-amz-replication-status: REPLICA ("Replication status information",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-status.html); FAILED
# answers with the s3:Replication:OperationFailedReplication event S3 would send
# ("Receiving replication failure events with Amazon S3 Event Notifications",
# https://docs.aws.amazon.com/AmazonS3/latest/userguide/replication-metrics-events.html).
_response_dict = FakeKey.response_dict


def response_dict_with_replication_status(self):
    res = _response_dict.fget(self)
    status = getattr(self, "replication_status", None)
    if status:
        res["x-amz-replication-status"] = status
    return res


FakeKey.response_dict = property(response_dict_with_replication_status)


def find_version(bucket, key, version_id):
    account = owner_of(bucket)
    backend = s3_backends[account]["aws"]
    return backend, backend.get_object(bucket, key, version_id=version_id)


def native_replicate(request):
    source_bucket, key, version_id = request["source_bucket"], request["key"], request["version_id"]
    backend, source = find_version(source_bucket, key, version_id)
    status = request["status"]
    source.replication_status = status
    if status == "COMPLETED":
        destination = request["destination_bucket"]
        dest_backend = s3_backends[owner_of(destination)]["aws"]
        replica = dest_backend.put_object(destination, key, source.value)
        replica.set_metadata(dict(source.metadata))
        replica._version_id = source.version_id
        replica.replication_status = "REPLICA"
        return {"replica_version_id": replica.version_id}
    if status == "FAILED":
        return {"event": {"Records": [{
            "eventVersion": "2.2", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "eventName": "Replication:OperationFailedReplication",
            "userIdentity": {"principalId": "s3.amazonaws.com"},
            "requestParameters": {"sourceIPAddress": "s3.amazonaws.com"},
            "responseElements": {"x-amz-request-id": "native-simulator", "x-amz-id-2": "native-simulator"},
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "ReplicationEventName",
                   "bucket": {"name": source_bucket, "ownerIdentity": {"principalId": "s3"},
                              "arn": f"arn:aws:s3:::{source_bucket}"},
                   "object": {"key": quote_plus(key, safe="/"), "size": source.size,
                              "eTag": source.etag.strip('"'), "versionId": source.version_id,
                              "sequencer": "0"}},
            "replicationEventData": {
                "replicationRuleId": request.get("rule_id", "rule-1"),
                "destinationBucket": f"arn:aws:s3:::{request['destination_bucket']}",
                "s3Operation": "OBJECT_PUT",
                "requestTime": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "failureReason": request.get("failure_reason", "AssumeRoleNotPermitted"),
            }}]}}
    return {}


# A write naming an SSE-KMS key that is not Enabled fails: S3 cannot generate a data key
# with it ("Key states of AWS KMS keys": a disabled key, or one pending deletion, "cannot be
# used in cryptographic operations", https://docs.aws.amazon.com/kms/latest/developerguide/key-state.html;
# S3 answers with KMS's exception, "Troubleshooting" in "Using server-side encryption with
# AWS KMS keys", https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html).
# moto writes with any key.
def unusable_key_state(sse_key, path):
    bucket = path.split("/", 1)[0]
    account = owner_of(bucket) if sse_key and bucket else None
    if account is None:
        return None
    parts = sse_key.split(":")
    region = parts[3] if sse_key.startswith("arn:") and len(parts) > 5 else "us-east-1"
    key = kms_backends[account][region].keys.get(sse_key.rsplit("/", 1)[-1])
    return key.key_state if key is not None and key.key_state != "Enabled" else None


def key_unusable(key, state):
    code = "KMS.DisabledException" if state == "Disabled" else "KMS.KMSInvalidStateException"
    return (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
            f"<Message>{html.escape(key)} is {state.lower()}.</Message></Error>").encode()


def upload_open(path, query):
    """Whether the multipart upload a request names is still in progress."""
    bucket = path.partition("/")[0]
    account = owner_of(bucket)
    upload_id = parse_qs(query).get("uploadId", [""])[0]
    return account is None or upload_id in s3_backends[account]["aws"].get_bucket(bucket).multiparts


def current_etag_matches(path, if_match):
    """If-Match on CompleteMultipartUpload, which moto ignores: the key's current ETag."""
    if not if_match:
        return True
    bucket, _, key = path.partition("/")
    account = owner_of(bucket)
    current = s3_backends[account]["aws"].get_object(bucket, unquote(key)) if account else None
    return current is not None and current.etag.strip('"') == if_match.strip('"')


def remember_session(seen):
    def change(body):
        key = re.search(rb"<AccessKeyId>([^<]+)</AccessKeyId>", body)
        expiration = re.search(rb"<Expiration>([^<]+)</Expiration>", body)
        arn = re.search(rb"<AssumedRoleUser>.*?<Arn>([^<]+)</Arn>", body, re.S)
        if key and expiration:
            when = expiration.group(1).decode().replace("Z", "+00:00")
            SESSION_EXPIRES[key.group(1).decode()] = datetime.datetime.fromisoformat(when).timestamp()
        if key and arn:
            SESSION_ARN[key.group(1).decode()] = arn.group(1).decode()
        if key:
            SESSIONS[key.group(1).decode()] = (seen["access_key"], seen.get("session_name"), seen.get("role_arn"))
        return body

    return change


def remember_upload(access_key, settings):
    """CreateMultipartUpload: who started the upload, when, and what the object it makes
    keeps ("CreateMultipartUpload": x-amz-object-lock-*, x-amz-website-redirect-location,
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateMultipartUpload.html)."""

    def change(body):
        upload = re.search(rb"<UploadId>([^<]+)</UploadId>", body)
        if upload:
            started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            who = SESSION_ARN.get(access_key, f"arn:aws:iam::123456789012:user/{access_key}")
            UPLOADS_STARTED[upload.group(1).decode()] = (who, started)
            if settings:
                UPLOAD_SETTINGS[upload.group(1).decode()] = settings
        return body

    return change


def upload_settings(environ):
    settings = {attr: environ[h] for h, attr in LOCK_HEADERS.items() if h in environ}
    if settings.get("lock_legal_status") == "OFF":
        del settings["lock_legal_status"]
    if "HTTP_X_AMZ_WEBSITE_REDIRECT_LOCATION" in environ:
        settings["website_redirect_location"] = environ["HTTP_X_AMZ_WEBSITE_REDIRECT_LOCATION"]
    return settings


def bad_digest(algorithm):
    return (
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>BadDigest</Code><Message>The '
        + algorithm.encode() + b" you specified did not match the calculated checksum.</Message>"
        b"<RequestId>bad-digest</RequestId></Error>"
    )


def checksum_refused(environ, path, query, copy_source):
    """The checksum S3 checks and moto does not, when one was sent: `None` when the bytes
    match (or nothing is to be checked), else the algorithm that did not. PutObject checks
    the x-amz-checksum-* value it is given against the body; CompleteMultipartUpload of type
    FULL_OBJECT checks it against the parts' bytes, in order ("Checking object integrity",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/checking-object-integrity.html)."""
    from moto.s3.utils import compute_checksum

    given = [(alg, environ[h]) for h, alg in CHECKSUM_HEADERS.items() if h in environ]
    if not given:
        return None
    algorithm, value = given[0]
    method = environ.get("REQUEST_METHOD")
    streaming = "aws-chunked" in environ.get("HTTP_CONTENT_ENCODING", "") or environ.get(
        "HTTP_X_AMZ_CONTENT_SHA256", "").startswith("STREAMING")
    if method == "PUT" and not copy_source and "uploadId=" not in query and not streaming:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        actual = compute_checksum(body, algorithm).decode()
    elif method == "POST" and "uploadId=" in query and environ.get("HTTP_X_AMZ_CHECKSUM_TYPE") == "FULL_OBJECT":
        bucket = path.partition("/")[0]
        upload_id = parse_qs(query).get("uploadId", [""])[0]
        if owner_of(bucket) is None:
            return None
        upload = s3_backends[owner_of(bucket)]["aws"].get_bucket(bucket).multiparts.get(upload_id)
        if upload is None:
            return None
        data = b"".join(upload.parts[n].value for n in upload.partlist)
        actual = compute_checksum(data, algorithm).decode()
    else:
        return None
    return None if actual == value else algorithm


def lock_enabled(path):
    bucket = path.partition("/")[0]
    account = owner_of(bucket)
    return account is None or s3_backends[account]["aws"].get_bucket(bucket).object_lock_enabled


def keeping_upload_settings(app, path, query):
    """CompleteMultipartUpload: the completed object takes what its upload was created with."""
    upload_id = parse_qs(query).get("uploadId", [""])[0]
    settings = UPLOAD_SETTINGS.get(upload_id)
    if not settings:
        return app

    def complete(environ, start_response):
        answer = []

        def respond(status, headers, exc_info=None):
            answer.append(status)
            return start_response(status, headers, exc_info)

        body = list(app(environ, respond))
        done = re.search(rb"<Bucket>([^<]*)</Bucket>.*<Key>([^<]*)</Key>", b"".join(body), re.S)
        if answer and answer[0].startswith("200") and done:
            bucket, key = (html.unescape(g.decode()) for g in done.groups())
            backend = s3_backends[owner_of(bucket)]["aws"]
            made = backend.get_object(bucket, key)
            for attr, value in settings.items():
                setattr(made, attr, value)
            UPLOAD_SETTINGS.pop(upload_id, None)
        return body

    return complete


def report_uploads(body):
    """ListMultipartUploads: each upload's Initiator and Initiated as S3 reports them (moto
    answers a fixed user and 2010-11-10 for every upload)."""

    def one(match):
        upload = match.group(0)
        upload_id = re.search(rb"<UploadId>([^<]+)</UploadId>", upload)
        known = upload_id and UPLOADS_STARTED.get(upload_id.group(1).decode())
        if not known:
            return upload
        who, started = (v.encode() for v in known)
        upload = re.sub(rb"<Initiator>.*?</Initiator>",
                        b"<Initiator><ID>" + who + b"</ID><DisplayName>" + who.rsplit(b"/", 1)[-1]
                        + b"</DisplayName></Initiator>", upload, flags=re.S)
        return re.sub(rb"<Initiated>[^<]*</Initiated>", b"<Initiated>" + started + b"</Initiated>", upload)

    return re.sub(rb"<Upload>.*?</Upload>", one, body, flags=re.S)


def rewrite(app, environ, start_response, change):
    """Runs moto and passes its whole response body through `change`."""
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = change(b"".join(app(environ, capture)))
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(captured["status"], headers)
    return [body]


class _KeysUnder:
    """A bucket's key store seen through a prefix."""

    def __init__(self, keys, prefix):
        self._keys, self._prefix = keys, prefix

    def iterlists(self):
        return ((k, v) for k, v in self._keys.iterlists() if k.startswith(self._prefix))


class _BucketUnder:
    def __init__(self, bucket, prefix):
        self._bucket, self.keys = bucket, _KeysUnder(bucket.keys, prefix)

    def __getattr__(self, name):
        return getattr(self._bucket, name)


class _BackendWith:
    """The backend, with get_bucket answering the prefixed view."""

    def __init__(self, backend, bucket):
        self._backend, self._bucket = backend, bucket

    def get_bucket(self, name):
        return self._bucket

    def __getattr__(self, name):
        return getattr(self._backend, name)


_list_object_versions = S3Backend.list_object_versions


def list_object_versions_under_prefix(self, bucket_name, *args, **kwargs):
    prefix = kwargs.get("prefix") or ""
    if not prefix:
        return _list_object_versions(self, bucket_name, *args, **kwargs)
    view = _BucketUnder(self.get_bucket(bucket_name), prefix)
    return _list_object_versions(_BackendWith(self, view), bucket_name, *args, **kwargs)


S3Backend.list_object_versions = list_object_versions_under_prefix

# GetBucketReplication answers the configuration PutBucketReplication stored, as S3 does
# ("GetBucketReplication", https://docs.aws.amazon.com/AmazonS3/latest/API/API_GetBucketReplication.html:
# the response body is the ReplicationConfiguration). moto rebuilds each rule with
# Filter.Prefix "" and DeleteMarkerReplication Disabled, whatever was put.
_put_bucket_replication = S3Backend.put_bucket_replication


def put_bucket_replication_as_written(self, bucket_name, replication):
    _put_bucket_replication(self, bucket_name, replication)
    self.get_bucket(bucket_name).replication_xml = replication.get("_as_written")


S3Backend.put_bucket_replication = put_bucket_replication_as_written
_replication_config_from_xml = S3Response._replication_config_from_xml


def replication_config_keeping_xml(self, xml):
    config = _replication_config_from_xml(self, xml)
    config["_as_written"] = xml if isinstance(xml, str) else xml.decode()
    return config


S3Response._replication_config_from_xml = replication_config_keeping_xml
_get_bucket_replication = S3Response.get_bucket_replication


def get_bucket_replication_as_written(self):
    bucket = self.backend.get_bucket(self.bucket_name)
    written = getattr(bucket, "replication_xml", None)
    if getattr(bucket, "replication", None) and written:
        return 200, {"Content-Type": "application/xml"}, written
    return _get_bucket_replication(self)


S3Response.get_bucket_replication = get_bucket_replication_as_written

app = expected_owner_check(DomainDispatcherApplication(create_backend_app))
class QuietHandler(WSGIRequestHandler):
    """No line per request on stderr (the tests keep it in a file): errors only."""

    def log_request(self, *args, **kwargs):
        pass


server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
print(server.server_port, flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
server.shutdown()
