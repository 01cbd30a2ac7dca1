"""Renders the IAM policies of the deployment templates as the stacks would create them, for
given parameter values: CloudFormation's intrinsics (Ref, Sub, GetAtt, If, Select, Split,
Join, Equals, Not, And, Or, NoValue) resolved, resources' ARNs made up in the stacks'
accounts. Used to lint every policy with parliament and to evaluate them against the
requests the engine sent (prove.py).

    render.py PARAMS.json OUT_DIR    writes one JSON file per policy, and index.json
"""

import json
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


class Tagged:
    def __init__(self, tag, value):
        self.tag, self.value = tag, value


def _construct(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged(suffix, value)


class Loader(yaml.SafeLoader):
    pass


Loader.add_multi_constructor("!", _construct)

NO_VALUE = object()


class Stack:
    """One template with its parameters, pseudo parameters and conditions resolved."""

    def __init__(self, path, params, account, region="us-east-1", stack="replicator"):
        self.template = yaml.load((ROOT / path).read_text(), Loader=Loader)
        self.params = {}
        for name, spec in self.template.get("Parameters", {}).items():
            value = params.get(name, spec.get("Default"))
            if value is None:
                raise SystemExit(f"{path}: parameter {name} has no value")
            self.params[name] = value
        self.pseudo = {"AWS::AccountId": account, "AWS::Region": region, "AWS::Partition": "aws",
                       "AWS::StackName": stack, "AWS::URLSuffix": "amazonaws.com"}
        self.account, self.region, self.stack = account, region, stack
        self.conditions = {}
        for name, expr in self.template.get("Conditions", {}).items():
            self.conditions[name] = bool(self.resolve(expr))

    def condition(self, name):
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve(self.template["Conditions"][name]))
        return self.conditions[name]

    def ref(self, name):
        if name in self.pseudo:
            return self.pseudo[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.params:
            value = self.params[name]
            return ",".join(value) if isinstance(value, list) else str(value)
        resource = self.template["Resources"][name]
        kind = resource["Type"]
        props = resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            return f"https://sqs.{self.region}.amazonaws.com/{self.account}/{self.stack}-{name}"
        if kind == "AWS::KMS::Key":
            return f"{name}-key-id"
        if kind == "AWS::SNS::Topic":
            return self.get_att(name, "Arn")
        if kind == "AWS::IAM::Role":
            return self.resolve(props.get("RoleName", f"{self.stack}-{name}"))
        return self.resolve(props.get("BucketName", props.get("RoleName", f"{self.stack}-{name}")))

    def get_att(self, name, attribute):
        resource = self.template["Resources"][name]
        kind, props = resource["Type"], resource.get("Properties", {})
        if attribute == "Arn":
            if kind == "AWS::IAM::Role":
                return f"arn:aws:iam::{self.account}:role/{self.ref(name)}"
            if kind == "AWS::KMS::Key":
                return f"arn:aws:kms:{self.region}:{self.account}:key/{self.ref(name)}"
            if kind == "AWS::SQS::Queue":
                return f"arn:aws:sqs:{self.region}:{self.account}:{self.stack}-{name}"
            if kind == "AWS::Logs::LogGroup":
                group = self.resolve(props["LogGroupName"])
                return f"arn:aws:logs:{self.region}:{self.account}:log-group:{group}:*"
            if kind == "AWS::SNS::Topic":
                return f"arn:aws:sns:{self.region}:{self.account}:{self.stack}-{name}"
            return f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{self.stack}-{name}"
        if attribute == "QueueName":
            return f"{self.stack}-{name}"
        raise SystemExit(f"GetAtt {name}.{attribute} not known to render.py")

    def sub(self, text, extra=None):
        extra = extra or {}

        def one(m):
            name = m.group(1)
            if name in extra:
                return str(extra[name])
            if "." in name:
                return self.get_att(*name.split(".", 1))
            return self.ref(name)

        return re.sub(r"\$\{([^}!]+)\}", one, text)

    def resolve(self, v):
        if isinstance(v, Tagged):
            t, x = v.tag, v.value
            if t == "Ref":
                return self.ref(x)
            if t == "Sub":
                if isinstance(x, list):
                    return self.sub(x[0], {k: self.resolve(e) for k, e in x[1].items()})
                return self.sub(x)
            if t == "GetAtt":
                name, attribute = x.split(".", 1) if isinstance(x, str) else x
                return self.get_att(name, attribute)
            if t == "If":
                return self.resolve(x[1] if self.condition(x[0]) else x[2])
            if t == "Equals":
                a, b = (self.resolve(e) for e in x)
                return str(a) == str(b)
            if t == "Not":
                return not self.resolve(x[0])
            if t == "And":
                return all(self.resolve(e) for e in x)
            if t == "Or":
                return any(self.resolve(e) for e in x)
            if t == "Condition":
                return self.condition(x)
            if t == "Select":
                return self.resolve(x[1])[int(self.resolve(x[0]))]
            if t == "Split":
                return str(self.resolve(x[1])).split(x[0])
            if t == "Join":
                return x[0].join(str(self.resolve(e)) for e in self.resolve(x[1]))
            if t == "FindInMap":
                return self.template["Mappings"][x[0]][self.resolve(x[1])][x[2]]
            raise SystemExit(f"!{t} not known to render.py")
        if isinstance(v, dict):
            if set(v) == {"Condition"} and isinstance(v["Condition"], str):
                return self.condition(v["Condition"])
            out = {}
            for k, e in v.items():
                r = self.resolve(e)
                if r is not NO_VALUE:
                    out[k] = r
            return out
        if isinstance(v, list):
            return [r for r in (self.resolve(e) for e in v) if r is not NO_VALUE]
        return v

    def policies(self):
        """(name, kind, document) of every IAM policy the stack creates."""
        out = []
        for name, resource in self.template["Resources"].items():
            if "Condition" in resource and not self.condition(resource["Condition"]):
                continue
            kind, props = resource["Type"], resource.get("Properties", {})
            if kind == "AWS::IAM::Role":
                out.append((f"{name}.trust", "trust", self.resolve(props["AssumeRolePolicyDocument"])))
                for p in self.resolve(props.get("Policies", [])):
                    out.append((f"{name}.{p['PolicyName']}", "identity", p["PolicyDocument"]))
            elif kind == "AWS::KMS::Key":
                out.append((f"{name}.key-policy", "resource", self.resolve(props["KeyPolicy"])))
            elif kind in ("AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
                out.append((name, "resource", self.resolve(props["PolicyDocument"])))
        return out


def render(params, out_dir):
    """Both stacks' policies for `params` ({"source": {...}, "destination": {...}, accounts})."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    index = {}
    stacks = [("source", "template.yaml", params["source_account"]),
              ("destination", "deploy/destination-account.yaml", params["destination_account"])]
    for side, path, account in stacks:
        stack = Stack(path, params[side], account, params.get("region", "us-east-1"))
        for name, kind, doc in stack.policies():
            file = out_dir / f"{side}.{name}.json"
            file.write_text(json.dumps(doc, indent=2))
            index[f"{side}.{name}"] = {"kind": kind, "file": str(file), "policy": doc}
    (out_dir / "index.json").write_text(json.dumps(index, indent=2))
    return index


if __name__ == "__main__":
    render(json.loads(Path(sys.argv[1]).read_text()), sys.argv[2])
