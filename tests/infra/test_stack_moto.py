"""The template deploys into moto's CloudFormation and the resources read back, through the
services' own APIs, with the properties the design asks for.

moto 5.2.5's CloudFormation skips some resource types (the schedule, the alarms, bucket/queue/topic
policies, SecurityGroupEgress) and drops some properties of the ones it creates (bucket
versioning, lifecycle and public access block; ECR scan-on-push; the ECS target's and service's
network configuration; task definitions' compatibilities, network mode, CPU and roles; the
service's launch type and load balancer). Those are asserted on the parsed template, next to the
readback, so each property is checked once where it can be."""

from __future__ import annotations

import ast
import json
from typing import Any

import pytest
from infra_support import Stack, client, create_stack, resolve

EXPECTED_RESOURCES = {
    "Bucket", "ScorerRepository", "UiRepository", "Cluster", "ScorerLogGroup", "UiLogGroup",
    "ScorerSecurityGroup", "UiSecurityGroup", "LoadBalancerSecurityGroup",
    "ScorerExecutionRole", "UiExecutionRole", "ScorerTaskRole", "UiTaskRole",
    "EventsRunTaskRole", "SchedulerRunTaskRole", "ScorerTaskDefinition", "SweepTaskDefinition",
    "UiTaskDefinition", "DeadLetterQueue", "ObjectCreatedRule", "ScorerTaskFailedRule",
    "LoadBalancer", "UiTargetGroup", "HttpsListener", "HttpRedirectListener", "UiService",
    "AlarmTopic", "JobsSchedulerRole", "RunEventsRule", "JobEventsRule",
}  # fmt: skip


def props(template: dict[str, Any], logical: str) -> dict[str, Any]:
    return template["Resources"][logical]["Properties"]


def policy_document(raw: Any) -> dict[str, Any]:
    """moto returns a role policy created by CloudFormation as a Python repr, not JSON."""
    if isinstance(raw, dict):
        return raw
    return json.loads(raw) if raw.lstrip().startswith('{"') else ast.literal_eval(raw)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("environment", [])}


def role_arn(endpoint: str, stack: Stack, logical: str) -> str:
    return client("iam", endpoint).get_role(RoleName=stack.resources[logical])["Role"]["Arn"]


def queue_arn(endpoint: str, stack: Stack) -> str:
    attrs = client("sqs", endpoint).get_queue_attributes(
        QueueUrl=stack.resources["DeadLetterQueue"], AttributeNames=["All"]
    )["Attributes"]
    return attrs["QueueArn"]


def cluster_arn(endpoint: str, stack: Stack) -> str:
    clusters = client("ecs", endpoint).describe_clusters(clusters=[stack.resources["Cluster"]])
    return clusters["clusters"][0]["clusterArn"]


def task_definition(endpoint: str, stack: Stack, logical: str) -> dict[str, Any]:
    ecs = client("ecs", endpoint)
    return ecs.describe_task_definition(taskDefinition=stack.resources[logical])["taskDefinition"]


def test_every_resource_is_created(stack: Stack) -> None:
    assert set(stack.resources) >= EXPECTED_RESOURCES, EXPECTED_RESOURCES - set(stack.resources)


def test_bootstrap_phase_creates_only_the_bucket_and_repositories(moto_endpoint, network) -> None:
    boot = create_stack(moto_endpoint, network, ImageTag="")
    # moto lists no logical id for resource types it skips (the bucket policy among them)
    assert set(boot.resources) == {"Bucket", "ScorerRepository", "UiRepository"}
    assert set(boot.outputs) == {"BucketName", "ScorerRepositoryUri", "UiRepositoryUri"}


def test_only_storage_and_repositories_exist_without_images(template) -> None:
    unconditional = {k for k, r in template["Resources"].items() if "Condition" not in r}
    assert unconditional == {"Bucket", "BucketPolicy", "ScorerRepository", "UiRepository"}


def test_bucket_is_versioned_encrypted_private_with_lifecycle(moto_endpoint, stack, template):
    s3 = client("s3", moto_endpoint)
    bucket = stack.resources["Bucket"]
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert stack.outputs["BucketName"] == bucket
    # not applied by moto's CloudFormation:
    bucket_props = props(template, "Bucket")
    assert bucket_props["VersioningConfiguration"] == {"Status": "Enabled"}
    block = bucket_props["PublicAccessBlockConfiguration"]
    assert set(block) == {
        "BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"
    }  # fmt: skip
    assert all(v is True for v in block.values())
    rules = {r["Id"]: r for r in bucket_props["LifecycleConfiguration"]["Rules"]}
    assert rules["expire-old-versions"]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": {"Ref": "NoncurrentVersionDays"}
    }
    assert rules["abort-incomplete-uploads"]["AbortIncompleteMultipartUpload"] == {
        "DaysAfterInitiation": 7
    }


def test_repositories_are_immutable_and_scanned(moto_endpoint, stack, template) -> None:
    ecr = client("ecr", moto_endpoint)
    names = [stack.resources["ScorerRepository"], stack.resources["UiRepository"]]
    assert names == [f"{stack.params['Name']}-scorer", f"{stack.params['Name']}-ui"]
    for repo in ecr.describe_repositories(repositoryNames=names)["repositories"]:
        assert repo["imageTagMutability"] == "IMMUTABLE"
    for logical in ("ScorerRepository", "UiRepository"):  # scan-on-push: not applied by moto
        assert props(template, logical)["ImageScanningConfiguration"] == {"ScanOnPush": True}


def test_rule_matches_incoming_csv_and_runs_the_scorer_task(moto_endpoint, stack, template):
    events = client("events", moto_endpoint)
    rule = events.describe_rule(Name=stack.resources["ObjectCreatedRule"])
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.s3"],
        "detail-type": ["Object Created"],
        "detail": {
            "bucket": {"name": [stack.resources["Bucket"]]},
            "object": {"key": [{"prefix": "incoming/"}]},
        },
    }
    (target,) = events.list_targets_by_rule(Rule=stack.resources["ObjectCreatedRule"])["Targets"]
    assert target["Arn"] == cluster_arn(moto_endpoint, stack)
    assert target["RoleArn"] == role_arn(moto_endpoint, stack, "EventsRunTaskRole")
    ecs = target["EcsParameters"]
    assert ecs["TaskDefinitionArn"] == stack.resources["ScorerTaskDefinition"]
    assert ecs["LaunchType"] == "FARGATE"
    assert ecs["TaskCount"] == 1
    # the network configuration: not kept by moto
    (tmpl_target,) = props(template, "ObjectCreatedRule")["Targets"]
    assert tmpl_target["EcsParameters"]["NetworkConfiguration"]["AwsVpcConfiguration"] == {
        "Subnets": {"Ref": "PrivateSubnetIds"},
        "SecurityGroups": [{"Ref": "ScorerSecurityGroup"}],
        "AssignPublicIp": "DISABLED",
    }
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 8, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"] == {"Arn": queue_arn(moto_endpoint, stack)}
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"] == {
        "bucket": "$.detail.bucket.name",
        "key": "$.detail.object.key",
        "version": "$.detail.object.version-id",
    }
    assert "DROPSCORE_KEY" in transformer["InputTemplate"]


def test_failed_task_rule_watches_both_families_and_notifies(moto_endpoint, stack) -> None:
    events = client("events", moto_endpoint)
    pattern = json.loads(
        events.describe_rule(Name=stack.resources["ScorerTaskFailedRule"])["EventPattern"]
    )
    name = stack.params["Name"]
    assert pattern["detail"]["group"] == [f"family:{name}-scorer", f"family:{name}-sweep"]
    assert pattern["detail"]["lastStatus"] == ["STOPPED"]
    (target,) = events.list_targets_by_rule(Rule=stack.resources["ScorerTaskFailedRule"])["Targets"]
    assert target["Arn"] == stack.resources["AlarmTopic"]


def test_run_events_reach_the_alarm_topic_as_one_readable_line(moto_endpoint, stack) -> None:
    events = client("events", moto_endpoint)
    rule = stack.resources["RunEventsRule"]
    pattern = json.loads(events.describe_rule(Name=rule)["EventPattern"])
    assert pattern == {
        "source": ["dropscore"],
        "detail-type": ["Run Completed", "Run Failed", "Run Alert"],
    }
    (target,) = events.list_targets_by_rule(Rule=rule)["Targets"]
    assert target["Arn"] == stack.resources["AlarmTopic"]
    transformer = target["InputTransformer"]
    assert transformer["InputPathsMap"]["summary"] == "$.detail.summary"
    assert transformer["InputTemplate"].startswith('"dropscore <type>: <summary>')
    (job_target,) = events.list_targets_by_rule(Rule=stack.resources["JobEventsRule"])["Targets"]
    assert job_target["Arn"] == stack.resources["AlarmTopic"]


def test_every_path_the_run_transformer_reads_is_in_a_real_run_event(template) -> None:
    """moto does not apply input transformers: render the template's by hand on the detail
    scorer/notify.py sends, so a renamed field cannot silently empty the e-mail."""
    from scorer import notify
    from scorer.manifest import AlertEntry, InputEntry, Manifest, ModelEntry

    m = Manifest(
        run_id="claims-v3-0123456789abcdef",
        status="partial",
        input=InputEntry.from_dict({"bucket": "b", "key": "incoming/a.csv", "version_id": "v1"}),
        model=ModelEntry.from_dict({"name": "claims", "version": 3}),
        rows_in=10,
        rows_scored=9,
        rows_rejected=1,
        alerts=(
            AlertEntry.from_dict(
                {"code": "REJECTED_SHARE", "message": "warning: 10% of rows were rejected"}
            ),
        ),
    )
    event = {"detail-type": "Run Alert", "detail": notify.run_detail(m, "s3://b/scored/a/r")}
    transformer = props(template, "RunEventsRule")["Targets"][0]["InputTransformer"]
    values = {}
    for name, path in transformer["InputPathsMap"].items():
        node: Any = event
        for part in path.removeprefix("$.").split("."):
            node = node[part]
        values[name] = node
    text = json.loads(transformer["InputTemplate"].replace("<", "{").replace(">", "}"))
    rendered = text.format(**values)
    assert rendered == (
        "dropscore Run Alert: s3://b/incoming/a.csv partial, 10 in / 9 scored / 1 rejected; "
        "alerts: warning: 10% of rows were rejected (run claims-v3-0123456789abcdef, "
        "manifest s3://b/scored/a/r/manifest.json)"
    )


def test_notifications_are_optional_and_can_be_problems_only(template) -> None:
    sub = template["Resources"]["NotificationEmailSubscription"]
    assert sub["Condition"] == "HasNotificationEmailAndImages"
    assert template["Parameters"]["NotificationEmail"]["Default"] == ""
    pattern = props(template, "RunEventsRule")["EventPattern"]
    problems = resolve(pattern, {}, {"NotifyProblemsOnly": True})
    assert problems["detail-type"] == ["Run Failed", "Run Alert"]
    state = props(template, "JobEventsRule")["State"]
    assert resolve(state, {}, {"NotifyProblemsOnly": True}) == "DISABLED"


def test_scorer_task_definition(moto_endpoint, stack) -> None:
    td = task_definition(moto_endpoint, stack, "ScorerTaskDefinition")
    bucket = stack.resources["Bucket"]
    assert td["family"] == f"{stack.params['Name']}-scorer"
    assert td["memory"] == "4096"
    assert td["volumes"] == [{"name": "tmp"}]
    (c,) = td["containerDefinitions"]
    assert c["name"] == "scorer"  # the input transformer's containerOverrides name it
    assert c["image"].endswith(f"/{stack.resources['ScorerRepository']}:t1")
    assert c["command"] == ["event"]
    assert c["readonlyRootFilesystem"] is True
    assert c["workingDirectory"] == "/tmp"
    assert c["mountPoints"] == [{"sourceVolume": "tmp", "containerPath": "/tmp", "readOnly": False}]
    env = env_of(c)
    jobs_env = {k: env.pop(k) for k in list(env) if k not in JOB_KEYS_NOT_MIRROR}
    assert env == {
        "DROPSCORE_REGISTRY": f"s3://{bucket}/models",
        "DROPSCORE_MODEL": "claims:production",
        "DROPSCORE_LOG_FORMAT": "json",
        "DROPSCORE_UI_URL": "",  # no UiDomainName: events carry no run-page link
    }
    # what `jobs add/remove` mirror a job's schedule with: the jobs group, the jobs' Scheduler
    # role, this cluster and the scorer family, privately in the stack's subnets
    name = stack.params["Name"]
    assert jobs_env["DROPSCORE_SCHEDULE_GROUP"] == f"{name}-jobs"
    assert jobs_env["DROPSCORE_SCHEDULER_ROLE_ARN"].endswith(f":role/{name}-jobs-scheduler")
    assert jobs_env["DROPSCORE_ECS_CLUSTER"] == cluster_arn(moto_endpoint, stack)
    assert jobs_env["DROPSCORE_TASK_DEFINITION"].endswith(f":task-definition/{name}-scorer")
    assert jobs_env["DROPSCORE_SUBNETS"].split(",") == stack.params["PrivateSubnetIds"].split(",")
    assert jobs_env["DROPSCORE_SECURITY_GROUPS"] == stack.resources["ScorerSecurityGroup"]
    assert jobs_env["DROPSCORE_DEAD_LETTER_ARN"].startswith("arn:aws:sqs:")
    logs = c["logConfiguration"]
    assert logs["logDriver"] == "awslogs"
    assert logs["options"]["awslogs-group"] == stack.resources["ScorerLogGroup"]


JOB_KEYS_NOT_MIRROR = {
    "DROPSCORE_REGISTRY", "DROPSCORE_MODEL", "DROPSCORE_LOG_FORMAT", "DROPSCORE_UI_URL"
}  # fmt: skip


def test_job_schedules_have_their_own_group(template) -> None:
    group = props(template, "JobsScheduleGroup")
    assert group["Name"] == {"Fn::Sub": "${Name}-jobs"}
    trust = props(template, "JobsSchedulerRole")["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "scheduler.amazonaws.com"}]


def test_sweep_task_definition_runs_sweep_over_the_bucket(moto_endpoint, stack) -> None:
    td = task_definition(moto_endpoint, stack, "SweepTaskDefinition")
    (c,) = td["containerDefinitions"]
    bucket = stack.resources["Bucket"]
    assert td["family"] == f"{stack.params['Name']}-sweep"
    assert c["image"].endswith(f"/{stack.resources['ScorerRepository']}:t1")
    assert c["command"] == ["sweep", "--bucket", bucket]
    assert env_of(c)["DROPSCORE_BUCKET"] == bucket
    assert c["readonlyRootFilesystem"] is True


TASK_DEFINITIONS = [
    ("ScorerTaskDefinition", "ScorerCpu", "ScorerMemory", "ScorerTaskRole", "ScorerExecutionRole"),
    ("SweepTaskDefinition", "ScorerCpu", "ScorerMemory", "ScorerTaskRole", "ScorerExecutionRole"),
    ("UiTaskDefinition", "UiCpu", "UiMemory", "UiTaskRole", "UiExecutionRole"),
    ("WorkerTaskDefinition", "WorkerCpu", "WorkerMemory", "WorkerTaskRole", "ScorerExecutionRole"),
]


@pytest.mark.parametrize(
    ("logical", "cpu", "memory", "task_role", "execution_role"),
    TASK_DEFINITIONS,
    ids=[
        "scorer runs on Fargate",
        "sweep runs on Fargate",
        "UI runs on Fargate",
        "Dask worker runs on Fargate",
    ],
)
def test_task_definition_is_fargate_awsvpc_with_its_own_roles(
    template, logical, cpu, memory, task_role, execution_role
) -> None:  # properties moto's CloudFormation drops
    td = props(template, logical)
    assert td["RequiresCompatibilities"] == ["FARGATE"]
    assert td["NetworkMode"] == "awsvpc"
    assert (td["Cpu"], td["Memory"]) == ({"Ref": cpu}, {"Ref": memory})
    assert td["TaskRoleArn"] == {"Fn::GetAtt": [task_role, "Arn"]}
    assert td["ExecutionRoleArn"] == {"Fn::GetAtt": [execution_role, "Arn"]}
    (container,) = td["ContainerDefinitions"]
    assert container["ReadonlyRootFilesystem"] is True
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_ui_task_definition(moto_endpoint, stack) -> None:
    td = task_definition(moto_endpoint, stack, "UiTaskDefinition")
    (c,) = td["containerDefinitions"]
    assert c["portMappings"][0]["containerPort"] == 8501
    assert c["secrets"] == [{"name": "DROPSCORE_UI_SECRETS", "valueFrom": stack.network.secret}]
    env = env_of(c)
    assert env["DROPSCORE_UI_MODE"] == "aws"
    assert env["DROPSCORE_UI_ALLOWED"] == "alice@example.com,example.org"
    assert env["DROPSCORE_UI_ADMINS"] == ""  # PromotionEnabled is false: nobody may promote
    assert c["readonlyRootFilesystem"] is True
    assert "/_stcore/health" in " ".join(c["healthCheck"]["command"])


def test_log_groups_keep_logs_for_the_retention_period(moto_endpoint, stack) -> None:
    logs = client("logs", moto_endpoint)
    for logical in ("ScorerLogGroup", "UiLogGroup"):
        (group,) = logs.describe_log_groups(logGroupNamePrefix=stack.resources[logical])[
            "logGroups"
        ]
        assert group["retentionInDays"] == 30


def test_dead_letter_queue_keeps_messages_for_14_days(moto_endpoint, stack) -> None:
    attrs = client("sqs", moto_endpoint).get_queue_attributes(
        QueueUrl=stack.resources["DeadLetterQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert attrs["MessageRetentionPeriod"] == "1209600"
    assert attrs["SqsManagedSseEnabled"] == "true"


def test_ui_service_sits_behind_https_with_redirect(moto_endpoint, stack, template) -> None:
    elb = client("elbv2", moto_endpoint)
    (lb,) = elb.describe_load_balancers(LoadBalancerArns=[stack.resources["LoadBalancer"]])[
        "LoadBalancers"
    ]
    assert lb["Scheme"] == "internet-facing"
    assert sorted(az["SubnetId"] for az in lb["AvailabilityZones"]) == sorted(stack.network.public)
    listeners = {
        li["Port"]: li
        for li in elb.describe_listeners(LoadBalancerArn=lb["LoadBalancerArn"])["Listeners"]
    }
    assert set(listeners) == {80, 443}
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"][0]["CertificateArn"] == stack.network.certificate
    # sign-in at the load balancer first: no unauthenticated request reaches Streamlit
    actions = https["DefaultActions"]  # in the template's order (moto drops forward's Order)
    assert [a["Type"] for a in actions] == ["authenticate-oidc", "forward"]
    oidc = actions[0]["AuthenticateOidcConfig"]
    assert oidc["Issuer"] == stack.params["OidcIssuer"]
    assert oidc["ClientId"] == stack.params["OidcClientId"]
    assert oidc["OnUnauthenticatedRequest"] == "authenticate"
    assert actions[1]["TargetGroupArn"] == stack.resources["UiTargetGroup"]
    redirect = listeners[80]["DefaultActions"][0]
    assert redirect["Type"] == "redirect"
    assert redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    assert redirect["RedirectConfig"]["StatusCode"] == "HTTP_301"
    (tg,) = elb.describe_target_groups(TargetGroupArns=[stack.resources["UiTargetGroup"]])[
        "TargetGroups"
    ]
    assert (tg["HealthCheckPath"], tg["Port"], tg["TargetType"]) == ("/_stcore/health", 8501, "ip")

    ecs = client("ecs", moto_endpoint)
    (svc,) = ecs.describe_services(
        cluster=stack.resources["Cluster"], services=[stack.resources["UiService"]]
    )["services"]
    assert svc["taskDefinition"] == stack.resources["UiTaskDefinition"]
    assert svc["desiredCount"] == 1
    # launch type, network and load balancer: not kept by moto
    service = props(template, "UiService")
    assert service["LaunchType"] == "FARGATE"
    assert service["LoadBalancers"] == [
        {"ContainerName": "ui", "ContainerPort": 8501, "TargetGroupArn": {"Ref": "UiTargetGroup"}}
    ]
    assert service["NetworkConfiguration"]["AwsvpcConfiguration"] == {
        "Subnets": {"Ref": "PrivateSubnetIds"},
        "SecurityGroups": [{"Ref": "UiSecurityGroup"}],
        "AssignPublicIp": "DISABLED",
    }


def test_security_groups_are_narrow(moto_endpoint, stack, template) -> None:
    ec2 = client("ec2", moto_endpoint)
    groups = {
        g["GroupId"]: g
        for g in ec2.describe_security_groups(
            GroupIds=[
                stack.resources[x]
                for x in ("ScorerSecurityGroup", "UiSecurityGroup", "WorkerSecurityGroup")
            ]
        )["SecurityGroups"]
    }
    scorer_sg, worker_sg = (
        stack.resources["ScorerSecurityGroup"],
        stack.resources["WorkerSecurityGroup"],
    )

    def ingress_of(group_id: str) -> list[tuple[int, int, list[str]]]:
        perms = groups[group_id]["IpPermissions"]
        assert all(p["IpRanges"] == [] and p.get("Ipv6Ranges", []) == [] for p in perms)
        return sorted(
            (p["FromPort"], p["ToPort"], [g["GroupId"] for g in p["UserIdGroupPairs"]])
            for p in perms
        )

    # only the Dask workers may connect to a scorer task, and only to its scheduler port; the
    # workers accept the scheduler (worker and nanny ports) and each other (worker port) only
    assert ingress_of(scorer_sg) == [(8786, 8786, [worker_sg])]
    assert ingress_of(worker_sg) == [(8788, 8788, [worker_sg]), (8788, 8789, [scorer_sg])]
    ui = groups[stack.resources["UiSecurityGroup"]]
    (ingress,) = ui["IpPermissions"]
    assert (ingress["FromPort"], ingress["ToPort"]) == (8501, 8501)
    assert ingress["IpRanges"] == []
    assert [p["GroupId"] for p in ingress["UserIdGroupPairs"]] == [
        stack.resources["LoadBalancerSecurityGroup"]
    ]
    # egress rules: not applied by moto (it leaves the default allow-all)
    for logical in ("ScorerSecurityGroup", "UiSecurityGroup", "WorkerSecurityGroup"):
        (egress,) = props(template, logical)["SecurityGroupEgress"]
        assert (egress["IpProtocol"], egress["FromPort"], egress["ToPort"]) == ("tcp", 443, 443)
    dask_egress = {
        (e["GroupId"]["Ref"], e["FromPort"], e["ToPort"], e["DestinationSecurityGroupId"]["Ref"])
        for e in (r["Properties"] for r in template["Resources"].values())
        if "DestinationSecurityGroupId" in e and e["FromPort"] != 8501
    }
    assert dask_egress == {
        ("ScorerSecurityGroup", 8788, 8789, "WorkerSecurityGroup"),
        ("WorkerSecurityGroup", 8786, 8786, "ScorerSecurityGroup"),
        ("WorkerSecurityGroup", 8788, 8788, "WorkerSecurityGroup"),
    }
    lb_egress = props(template, "LoadBalancerEgressToUi")
    assert (lb_egress["FromPort"], lb_egress["ToPort"]) == (8501, 8501)
    assert lb_egress["DestinationSecurityGroupId"] == {"Ref": "UiSecurityGroup"}
    lb_ingress = props(template, "LoadBalancerSecurityGroup")["SecurityGroupIngress"]
    assert sorted(r["FromPort"] for r in lb_ingress) == [80, 443]
    assert all(r["CidrIp"] == {"Ref": "AllowedIngressCidr"} for r in lb_ingress)


def test_roles_read_back_with_their_scoped_policies(moto_endpoint, stack) -> None:
    iam = client("iam", moto_endpoint)
    name = stack.params["Name"]

    def statements(logical: str) -> dict[str, dict[str, Any]]:
        role = stack.resources[logical]
        out = {}
        for policy in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            doc = policy_document(
                iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"]
            )
            # moto keeps an !If that chose AWS::NoValue as a None statement: skip it
            out.update({s["Sid"]: s for s in doc["Statement"] if s is not None})
        return out

    events = statements("EventsRunTaskRole")
    assert set(events) == {"RunScorerFamily", "PassScorerRoles"}
    assert events["RunScorerFamily"]["Resource"].endswith(f":task-definition/{name}-scorer:*")
    assert sorted(events["PassScorerRoles"]["Resource"]) == sorted(
        [
            role_arn(moto_endpoint, stack, "ScorerTaskRole"),
            role_arn(moto_endpoint, stack, "ScorerExecutionRole"),
        ]
    )
    scheduler = statements("SchedulerRunTaskRole")
    assert scheduler["RunSweepFamily"]["Resource"].endswith(f":task-definition/{name}-sweep:*")
    jobs = statements("JobsSchedulerRole")
    assert set(jobs) == {"RunScorerFamily", "PassScorerRoles", "DeadLetters"}
    assert jobs["RunScorerFamily"]["Resource"].endswith(f":task-definition/{name}-scorer:*")
    bucket_arn = f"arn:aws:s3:::{stack.resources['Bucket']}"
    scorer = statements("ScorerTaskRole")
    assert scorer["WriteResults"]["Resource"] == f"{bucket_arn}/scored/*"
    assert scorer["ManageJobSchedules"]["Resource"].endswith(f":schedule/{name}-jobs/*")
    assert "ReadJobSourceBuckets" not in scorer  # JobSourceBuckets defaults to none
    ui = statements("UiTaskRole")
    assert ui["UploadInputs"]["Resource"] == f"{bucket_arn}/incoming/*"
    assert "PromoteModels" not in ui  # PromotionEnabled defaults to false


def test_promotion_enabled_adds_only_the_alias_write(moto_endpoint, network) -> None:
    promoting = create_stack(moto_endpoint, network, PromotionEnabled="true")
    iam = client("iam", moto_endpoint)
    role = promoting.resources["UiTaskRole"]
    (policy,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    doc = policy_document(iam.get_role_policy(RoleName=role, PolicyName=policy)["PolicyDocument"])
    promote = {s["Sid"]: s for s in doc["Statement"]}["PromoteModels"]
    bucket_arn = f"arn:aws:s3:::{promoting.resources['Bucket']}"
    assert promote["Action"] == "s3:PutObject"
    assert promote["Resource"] == f"{bucket_arn}/models/*/aliases/*"
    td = client("ecs", moto_endpoint).describe_task_definition(
        taskDefinition=promoting.resources["UiTaskDefinition"]
    )["taskDefinition"]
    assert env_of(td["containerDefinitions"][0])["DROPSCORE_UI_ADMINS"] == "alice@example.com"


# --- resources moto's CloudFormation skips: asserted on the parsed template -------------------


def test_bucket_sends_events_to_eventbridge(template) -> None:
    config = props(template, "Bucket")["NotificationConfiguration"]
    assert config == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}


def test_bucket_policy_denies_plain_http(template) -> None:
    (statement,) = props(template, "BucketPolicy")["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["Bucket", "Arn"]},
        {"Fn::Sub": "${Bucket.Arn}/*"},
    ]


def test_bucket_survives_stack_deletion(template) -> None:
    bucket = template["Resources"]["Bucket"]
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"


def test_schedule_runs_the_sweep_task_privately_with_retries_and_dlq(template) -> None:
    schedule = props(template, "SweepSchedule")
    assert schedule["ScheduleExpression"] == {"Ref": "SweepScheduleExpression"}
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["Cluster", "Arn"]}
    assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRunTaskRole", "Arn"]}
    ecs = target["EcsParameters"]
    assert ecs["TaskDefinitionArn"] == {"Ref": "SweepTaskDefinition"}
    assert ecs["LaunchType"] == "FARGATE"
    assert ecs["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
    assert ecs["NetworkConfiguration"]["AwsvpcConfiguration"]["Subnets"] == {
        "Ref": "PrivateSubnetIds"
    }
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}}


ALARMS = [
    ("DeadLettersAlarm", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName",
     {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}),
    ("FailedInvocationsAlarm", "AWS/Events", "FailedInvocations", "RuleName",
     {"Ref": "ObjectCreatedRule"}),
    ("ScorerTasksFailingAlarm", "AWS/Events", "MatchedEvents", "RuleName",
     {"Ref": "ScorerTaskFailedRule"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("logical", "namespace", "metric", "dimension", "value"),
    ALARMS,
    ids=["dead letters wait in the DLQ", "the rule failed to start tasks", "scorer tasks failed"],
)
def test_alarm_fires_on_the_first_occurrence_and_notifies_the_topic(
    template, logical, namespace, metric, dimension, value
) -> None:
    alarm = props(template, logical)
    assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric)
    assert alarm["Dimensions"] == [{"Name": dimension, "Value": value}]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_failed_task_pattern_ignores_success_and_refused_files(template) -> None:
    pattern = resolve(
        props(template, "ScorerTaskFailedRule")["EventPattern"],
        {"Cluster.Arn": "arn:cluster", "Name": "ds"},
    )
    assert pattern["detail"]["$or"] == [
        {"containers": {"exitCode": [{"anything-but": [0, 2]}]}},  # 0 done, 2 refused: terminal
        {"stopCode": ["TaskFailedToStart"]},
    ]


def test_topic_accepts_alarms_and_the_failed_task_rule_only(template) -> None:
    statements = props(template, "AlarmTopicPolicy")["PolicyDocument"]["Statement"]
    principals = sorted(s["Principal"]["Service"] for s in statements)
    assert principals == ["cloudwatch.amazonaws.com", *["events.amazonaws.com"] * 2]
    rules = [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in statements[1:]]
    assert rules == [
        {"Fn::GetAtt": ["ScorerTaskFailedRule", "Arn"]},
        [{"Fn::GetAtt": ["RunEventsRule", "Arn"]}, {"Fn::GetAtt": ["JobEventsRule", "Arn"]}],
    ]
    assert all(s["Action"] == "sns:Publish" and "Condition" in s for s in statements)


def test_the_load_balancer_signs_users_in_before_anything_reaches_streamlit(template) -> None:
    """Streamlit's upload endpoint takes a body from anyone with a session id (issue 12 #5):
    the HTTPS listener authenticates (OIDC) before it forwards, with no rule that skips it,
    and the client secret comes from Secrets Manager, never from a plain parameter."""
    listener = props(template, "HttpsListener")
    authenticate, forward = sorted(listener["DefaultActions"], key=lambda a: a["Order"])
    assert (authenticate["Type"], forward["Type"]) == ("authenticate-oidc", "forward")
    assert forward["TargetGroupArn"] == {"Ref": "UiTargetGroup"}
    config = authenticate["AuthenticateOidcConfig"]
    for key in ("Issuer", "AuthorizationEndpoint", "TokenEndpoint", "UserInfoEndpoint"):
        param = config[key]["Ref"]
        assert template["Parameters"][param]["AllowedPattern"].startswith("^https://"), key
    assert config["ClientId"] == {"Ref": "OidcClientId"}
    assert config["ClientSecret"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${OidcClientSecretArn}:SecretString}}"
    }
    assert config["OnUnauthenticatedRequest"] == "authenticate"
    assert "email" in config["Scope"].split()
    rules = [r for r in template["Resources"].values() if r["Type"].endswith("ListenerRule")]
    assert rules == [], "a listener rule could forward without the sign-in"
    http = props(template, "HttpRedirectListener")["DefaultActions"]
    assert [a["Type"] for a in http] == ["redirect"]


def test_ingress_range_is_an_explicit_choice(template) -> None:
    from infra_support import ROOT

    cidr = template["Parameters"]["AllowedIngressCidr"]
    assert "Default" not in cidr, "who may reach the UI is the deployer's choice, not 0.0.0.0/0"
    readme = (ROOT / "infra" / "README.md").read_text()
    assert "| `AllowedIngressCidr` | — (required) |" in readme
