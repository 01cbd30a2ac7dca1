"""Starts moto's server on a free loopback port, prints the port, and serves until stdin
closes: when the test process that started it exits, the pipe closes and so does moto.

Two S3 behaviours are put right in front of moto, as S3 has them:
- a request carrying x-amz-expected-bucket-owner (or x-amz-source-expected-bucket-owner for
  the copy source) for a bucket owned by another account is answered 403 AccessDenied, and
  nothing is written;
- GetBucketVersioning and ListParts answer with the root elements S3 documents
  (VersioningConfiguration, ListPartsResult; moto names them GetBucketVersioningResponse and
  ListPartsResponse, which strict SDKs such as Rust's reject).
Requests are path-style (the tests set S3_FORCE_PATH_STYLE).

For the security tests, GET /_capture answers with what every request carried that matters
to them (JSON lines): method, path, the access key, session token and signature it was
signed with, the expected-owner headers, and for STS AssumeRole the RoleArn and ExternalId."""

import io
import json
import re
import sys
from collections import deque
from urllib.parse import parse_qs, unquote

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.s3.models import s3_backends
from werkzeug.serving import make_server

DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message><RequestId>expected-bucket-owner</RequestId></Error>"
)


def owner_of(bucket):
    entry = s3_backends.bucket_accounts.get(bucket)
    return entry[1] if entry else None


SERVED = [0]
CAPTURED = deque(maxlen=200_000)
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
    form = environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded")
    if environ.get("REQUEST_METHOD") == "POST" and seen["path"] == "/" and form:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        fields = parse_qs(body.decode("utf-8", "replace"))
        seen["action"] = fields.get("Action", [None])[0]
        seen["role_arn"] = fields.get("RoleArn", [None])[0]
        seen["external_id"] = fields.get("ExternalId", [None])[0]
    CAPTURED.append(seen)


def expected_owner_check(app):
    def middleware(environ, start_response):
        # The benchmark reads how many requests the server answered (requests per object).
        if environ.get("PATH_INFO") == "/_bench/requests":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(SERVED[0]).encode()]
        if environ.get("PATH_INFO") == "/_capture":
            body = "".join(json.dumps(c) + "\n" for c in list(CAPTURED)).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        SERVED[0] += 1
        capture(environ)
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
        query = environ.get("QUERY_STRING", "")
        if environ.get("REQUEST_METHOD") == "GET" and query == "versioning":
            return fix_root(app, environ, start_response, b"GetBucketVersioningResponse", b"VersioningConfiguration")
        if environ.get("REQUEST_METHOD") == "GET" and "uploadId=" in query:
            return fix_root(app, environ, start_response, b"ListPartsResponse", b"ListPartsResult")
        return app(environ, start_response)

    return middleware


def fix_root(app, environ, start_response, wrong, right):
    captured = {}

    def capture(status, headers, exc_info=None):
        captured["status"], captured["headers"] = status, headers
        return lambda data: None

    body = b"".join(app(environ, capture))
    body = body.replace(wrong, right)
    headers = [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"]
    headers.append(("Content-Length", str(len(body))))
    start_response(captured["status"], headers)
    return [body]


app = expected_owner_check(DomainDispatcherApplication(create_backend_app))
server = make_server("127.0.0.1", 0, app, threaded=True)
print(server.server_port, flush=True)
import threading  # noqa: E402

threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()
server.shutdown()
