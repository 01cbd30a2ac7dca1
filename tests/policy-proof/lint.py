"""Lints every IAM policy the project ships with parliament: both templates' policies,
rendered with every optional statement on (params.json), and every section of
`replicator policies`. A finding fails, except the few listed in ALLOWED, each with why.

    lint.py REPLICATOR_BINARY
"""

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from render import render

HERE = Path(__file__).resolve().parent
VENV = Path(__import__("os").environ.get("REPLICATOR_VENV_BIN", HERE.parents[1] / ".venv/bin"))

# (policy kind, parliament issue, text of its detail): why it is not a defect.
ALLOWED = [
    ("resource", "RESOURCE_STAR", "kms:", "a KMS key policy's Resource \"*\" means the key itself"),
    ("trust", "MALFORMED", "neither Resource nor NotResource",
     "a trust policy has no Resource by definition (parliament reads it as an identity policy)"),
]


def allowed(kind, finding):
    detail = json.dumps(finding.get("detail"))
    return next((why for k, issue, text, why in ALLOWED
                 if k == kind and issue == finding["issue"] and text in detail), None)


def cli_policies(binary, workdir):
    """`replicator policies --json` for the same deployment as params.json, by section."""
    params = json.loads((HERE / "params.json").read_text())
    s, d = params["source"], params["destination"]
    out = subprocess.run([binary, "policies", "--json",
                          "--source-bucket", s["SourceBucket"], "--key-prefix", s["KeyPrefix"],
                          "--destination-bucket", s["DestinationBucket"], "--destination-prefix", s["DestinationPrefix"],
                          "--destination-role-arn", s["DestinationRoleArn"], "--destination-external-id", s["DestinationExternalId"],
                          "--destination-kms-key-id", s["DestinationKmsKeyArn"], "--replicate-deletes", "true",
                          "--function-role-arn", f"arn:aws:iam::{params['source_account']}:role/s3-fallback-replicator-functions",
                          "--source-kms-key-arn", s["SourceKmsKeyArn"]],
                         check=True, capture_output=True, text=True).stdout
    files = {}
    for i, (title, doc) in enumerate(json.loads(out).items()):
        kind = "trust" if "trust policy" in title else "resource" if ("key policy" in title or "bucket policy" in title) else "identity"
        if isinstance(doc, list):
            doc = {"Version": "2012-10-17", "Statement": doc}
        path = Path(workdir) / f"cli.{i}.json"
        path.write_text(json.dumps(doc, indent=2))
        files[f"replicator policies: {title}"] = (kind, path)
    return files


def main(binary):
    with tempfile.TemporaryDirectory() as workdir:
        index = render(json.loads((HERE / "params.json").read_text()), Path(workdir) / "templates")
        files = {f"template {name}": (v["kind"], Path(v["file"])) for name, v in index.items()}
        files.update(cli_policies(binary, workdir))
        failures = 0
        for name, (kind, path) in sorted(files.items()):
            # --string, stdin closed: parliament refuses --file when stdin is not a terminal.
            out = subprocess.run([str(VENV / "parliament"), "--string", path.read_text(), "--json",
                                  "--minimum_severity", "LOW"], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL)
            if "error" in out.stderr or out.returncode not in (0, 1):
                raise SystemExit(f"parliament could not lint {name}: {out.stderr}")
            findings = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
            for f in findings:
                why = allowed(kind, f)
                if why:
                    print(f"  allowed  {name}: {f['issue']} ({why})")
                else:
                    failures += 1
                    print(f"  FINDING  {name}: {f['issue']} {f['title']}: {f.get('detail')}")
        print(f"parliament: {len(files)} policies, {failures} findings")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
