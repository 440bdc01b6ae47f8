"""Helpers for the infra tests: the parsed CloudFormation template, a tiny resolver for the
intrinsic functions the tests need, and creating the stack in a moto server."""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "infra" / "template.yaml"
VENV_BIN = Path(sys.executable).parent
REGION = "us-east-1"
NO_VALUE = object()


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as plain dicts; short tags (!Ref, !Sub …) become their long forms."""
    from cfnlint.decode import cfn_yaml

    return json.loads(json.dumps(cfn_yaml.load(str(path))))


def resolve(node: Any, refs: dict[str, Any], conditions: dict[str, bool] | None = None) -> Any:
    """Evaluate Ref / Fn::Sub / Fn::GetAtt / Fn::If / Fn::Join / Fn::Split against ``refs``
    (keys: a logical id or parameter for Ref, ``"Id.Attr"`` for GetAtt). Unknown names raise."""
    conditions = conditions or {}
    if isinstance(node, list):
        items = [resolve(x, refs, conditions) for x in node]
        return [x for x in items if x is not NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return NO_VALUE if arg == "AWS::NoValue" else refs[arg]
        if fn == "Fn::GetAtt":
            return refs[".".join(arg) if isinstance(arg, list) else arg]
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            scope = {**refs, **{k: resolve(v, refs, conditions) for k, v in extra.items()}}
            return re.sub(r"\$\{([^}!]+)\}", lambda m: str(scope[m.group(1)]), text)
        if fn == "Fn::If":
            name, yes, no = arg
            return resolve(yes if conditions[name] else no, refs, conditions)
        if fn == "Fn::Split":
            sep, text = arg
            return str(resolve(text, refs, conditions)).split(sep)
        if fn == "Fn::Join":
            sep, parts = arg
            sep = resolve(sep, refs, conditions)
            return sep.join(str(p) for p in resolve(parts, refs, conditions))
    out = {k: resolve(v, refs, conditions) for k, v in node.items()}
    return {k: v for k, v in out.items() if v is not NO_VALUE}


def client(name: str, endpoint: str) -> Any:
    import boto3

    return boto3.client(name, endpoint_url=endpoint, region_name=REGION)


@dataclass
class Network:
    vpc: str
    private: list[str]
    public: list[str]
    certificate: str
    secret: str
    oidc_secret: str


def make_network(endpoint: str) -> Network:
    """A VPC with two private and two public subnets, an ACM certificate and the UI secret:
    the things the template takes as parameters (moto checks that they exist)."""
    ec2 = client("ec2", endpoint)
    octet = uuid.uuid4().int % 200 + 20
    vpc = ec2.create_vpc(CidrBlock=f"10.{octet}.0.0/16")["Vpc"]["VpcId"]
    # DNS hostnames on, as interface endpoints' private DNS need (and moto's awsvpc RunTask too)
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"10.{octet}.{i}.0/24", AvailabilityZone=f"{REGION}{'ab'[i % 2]}"
        )["Subnet"]["SubnetId"]
        for i in range(4)
    ]
    cert = client("acm", endpoint).request_certificate(DomainName="ui.example.com")
    secret = client("secretsmanager", endpoint).create_secret(
        Name=f"dropscore-ui-{uuid.uuid4().hex[:8]}", SecretString='[auth]\nredirect_uri = "x"\n'
    )
    oidc = client("secretsmanager", endpoint).create_secret(
        Name=f"dropscore-oidc-{uuid.uuid4().hex[:8]}", SecretString="client-secret"
    )
    return Network(
        vpc, subnets[:2], subnets[2:], cert["CertificateArn"], secret["ARN"], oidc["ARN"]
    )


@dataclass
class Stack:
    """A stack created in moto, with its parameters and resources (logical id -> physical id)."""

    name: str
    params: dict[str, str]
    network: Network
    resources: dict[str, str] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)


def create_stack(endpoint: str, network: Network, **overrides: str) -> Stack:
    cfn = client("cloudformation", endpoint)
    name = f"ds{uuid.uuid4().hex[:10]}"
    params = {
        "Name": name,  # unique per stack: names of repositories, roles, queues derive from it
        "ImageTag": "t1",
        "VpcId": network.vpc,
        "PrivateSubnetIds": ",".join(network.private),
        "PublicSubnetIds": ",".join(network.public),
        "CertificateArn": network.certificate,
        "UiSecretArn": network.secret,
        "OidcIssuer": "https://idp.example.com",
        "OidcAuthorizationEndpoint": "https://idp.example.com/authorize",
        "OidcTokenEndpoint": "https://idp.example.com/token",
        "OidcUserInfoEndpoint": "https://idp.example.com/userinfo",
        "OidcClientId": "dropscore-ui",
        "OidcClientSecretArn": network.oidc_secret,
        "AllowedIngressCidr": "203.0.113.0/24",
        "UiAllowed": "alice@example.com,example.org",
        "UiAdmins": "alice@example.com",
        "AlarmEmail": "ops@example.com",
        **overrides,
    }
    cfn.create_stack(
        StackName=name,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()],
        Capabilities=["CAPABILITY_NAMED_IAM"],
    )
    deadline = time.monotonic() + 60
    while True:
        stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("IN_PROGRESS") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    summaries = cfn.list_stack_resources(StackName=name)["StackResourceSummaries"]
    return Stack(
        name=name,
        params=params,
        network=network,
        resources={
            r["LogicalResourceId"]: r.get("PhysicalResourceId", "")
            for r in summaries
            if r.get("LogicalResourceId")
        },
        outputs={o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])},
    )
