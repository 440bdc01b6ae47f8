"""`infra/deploy.sh` refuses clearly without its prerequisites, and — with images already in
ECR, so no Docker engine is needed — deploys and destroys the stack through the real AWS CLI
against moto (bootstrap phase, image check, full stack; the bucket survives `destroy`)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from infra_support import ROOT, Network, client

SCRIPT = ROOT / "infra" / "deploy.sh"
AWS = shutil.which("aws")
needs_aws_cli = pytest.mark.skipif(AWS is None, reason="the AWS CLI is not installed here")


def run_script(command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """PATH and HOME only: no AWS settings leak in from the test session."""
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(extra)
    return env


def moto_env(endpoint: str, **extra: str) -> dict[str, str]:
    return clean_env(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        **extra,
    )


def refusal(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one clear line, no traceback
    return lines[0]


def test_usage_is_explained() -> None:
    line = refusal(run_script("launch", clean_env()))
    assert line == "deploy: usage: bash infra/deploy.sh deploy|destroy"


def test_refuses_without_the_aws_cli() -> None:
    path = "/usr/bin:/bin"
    if shutil.which("aws", path=path):
        pytest.skip("the AWS CLI is installed system-wide")
    line = refusal(run_script("deploy", clean_env(PATH=path)))
    assert line.startswith("deploy: refusing: the AWS CLI is not installed")


@needs_aws_cli
@pytest.mark.parametrize("command", ["deploy", "destroy"])
def test_refuses_without_aws_credentials(tmp_path: Path, command: str) -> None:
    env = clean_env(
        HOME=str(tmp_path),
        AWS_CONFIG_FILE=str(tmp_path / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
    )
    line = refusal(run_script(command, env))
    assert line.startswith("deploy: refusing: no usable AWS credentials")


@needs_aws_cli
def test_refuses_without_a_docker_engine(moto_endpoint: str) -> None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "info"], capture_output=True).returncode == 0:
        pytest.skip("a Docker engine is running here")
    line = refusal(run_script("deploy", moto_env(moto_endpoint)))
    assert line.startswith("deploy: refusing: no Docker engine")


@needs_aws_cli
def test_refuses_without_a_parameters_file(moto_endpoint: str, tmp_path: Path) -> None:
    env = moto_env(
        moto_endpoint,
        DROPSCORE_IMAGE_TAG="t1",
        DROPSCORE_PARAMETERS=str(tmp_path / "parameters.json"),
    )
    line = refusal(run_script("deploy", env))
    assert "parameters.json not found; copy infra/parameters.example.json" in line


def test_example_parameters_name_only_template_parameters(template) -> None:
    example = json.loads((ROOT / "infra" / "parameters.example.json").read_text())
    names = {k for k in example if not k.startswith("_")}
    assert names <= set(template["Parameters"])
    required = {k for k, p in template["Parameters"].items() if "Default" not in p}
    assert required <= names, f"the example lacks required parameters {required - names}"


def put_image(endpoint: str, repository: str, tag: str) -> None:
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1,
            "digest": "sha256:" + uuid.uuid4().hex * 2,
        },
        "layers": [],
    }
    client("ecr", endpoint).put_image(
        repositoryName=repository, imageTag=tag, imageManifest=json.dumps(manifest)
    )


def stack_resources(endpoint: str, stack: str) -> dict[str, Any]:
    summaries = client("cloudformation", endpoint).list_stack_resources(StackName=stack)
    return {
        r["LogicalResourceId"]: r.get("PhysicalResourceId")
        for r in summaries["StackResourceSummaries"]
        if r.get("LogicalResourceId")
    }


@needs_aws_cli
@pytest.mark.slow
def test_deploy_and_destroy_against_moto(moto_endpoint: str, network: Network, tmp_path: Path):
    name = f"dd{uuid.uuid4().hex[:8]}"
    params = json.loads((ROOT / "infra" / "parameters.example.json").read_text())
    params.update(
        Name=name,
        VpcId=network.vpc,
        PrivateSubnetIds=network.private,
        PublicSubnetIds=network.public,
        CertificateArn=network.certificate,
        UiSecretArn=network.secret,
    )
    params_file = tmp_path / "parameters.json"
    params_file.write_text(json.dumps(params))
    stack = f"stack-{name}"
    env = moto_env(
        moto_endpoint,
        DROPSCORE_STACK=stack,
        DROPSCORE_PARAMETERS=str(params_file),
        DROPSCORE_IMAGE_TAG="v1",
    )

    # 1st run: creates the bootstrap stack, then refuses because the images are not in ECR yet
    first = run_script("deploy", env)
    assert "phase 1: creating stack" in first.stdout
    assert "is not in ECR" in refusal(first)
    assert set(stack_resources(moto_endpoint, stack)) == {
        "Bucket", "ScorerRepository", "UiRepository"
    }  # fmt: skip

    # images pushed (as `docker push` would), 2nd run deploys everything with that tag
    put_image(moto_endpoint, f"{name}-scorer", "v1")
    put_image(moto_endpoint, f"{name}-ui", "v1")
    second = run_script("deploy", env)
    assert second.returncode == 0, second.stderr
    resources = stack_resources(moto_endpoint, stack)
    assert {"ScorerTaskDefinition", "ObjectCreatedRule", "UiService"} <= set(resources)
    ecs = client("ecs", moto_endpoint)
    td = ecs.describe_task_definition(taskDefinition=resources["ScorerTaskDefinition"])
    assert td["taskDefinition"]["containerDefinitions"][0]["image"].endswith(f"{name}-scorer:v1")
    bucket = resources["Bucket"]
    assert f"bucket: {bucket}" in second.stdout

    # destroy: the stack goes, the bucket (and its data) stays. The template empties the
    # repositories on delete (EmptyOnDelete), which moto ignores: empty them as AWS would.
    ecr = client("ecr", moto_endpoint)
    for repo in (f"{name}-scorer", f"{name}-ui"):
        ecr.batch_delete_image(repositoryName=repo, imageIds=[{"imageTag": "v1"}])
    client("s3", moto_endpoint).put_object(Bucket=bucket, Key="incoming/keep.csv", Body=b"a\n1\n")
    gone = run_script("destroy", env)
    assert gone.returncode == 0, gone.stderr
    assert f"Kept: bucket {bucket}" in gone.stdout
    stacks = client("cloudformation", moto_endpoint).list_stacks()["StackSummaries"]
    assert [s["StackStatus"] for s in stacks if s["StackName"] == stack] == ["DELETE_COMPLETE"]
    assert client("s3", moto_endpoint).head_object(Bucket=bucket, Key="incoming/keep.csv")
    assert "does not exist" in run_script("destroy", env).stdout


def test_the_deployed_template_is_the_template_as_compact_json(tmp_path: Path) -> None:
    """CloudFormation takes at most 51,200 bytes inline: the script deploys the template as
    compact JSON (its own `rendered_template`, run here), which must parse to exactly the same
    template and fit."""
    from cfnlint.decode import cfn_yaml

    source = ROOT / "infra" / "template.yaml"
    script = SCRIPT.read_text()
    function = script[script.index("rendered_template() {") : script.index("cfn_deploy() {")]
    proc = subprocess.run(
        ["bash", "-c", 'set -euo pipefail; die() { echo "$*" >&2; exit 1; }\n'
         + function + "\nrendered_template"],
        env={**clean_env(TMPDIR=str(tmp_path)), "PY": sys.executable, "TEMPLATE": str(source)},
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    rendered = Path(proc.stdout.strip())
    assert rendered.parent == tmp_path
    assert len(rendered.read_bytes()) <= 51_200
    assert len(source.read_bytes()) > 51_200  # why the script renders at all
    assert json.dumps(cfn_yaml.load(str(rendered)), sort_keys=True, default=str) == json.dumps(
        cfn_yaml.load(str(source)), sort_keys=True, default=str
    )
