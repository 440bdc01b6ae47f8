"""Least privilege, asserted on the template's own policy documents: no wildcard actions, no
`Resource: "*"` where a resource can be named, and each role can do exactly its job. A small
evaluator answers "may role R do action A on resource X?" the way IAM would for Allow statements
(wildcards in actions and ARNs, the condition operators the template uses)."""

from __future__ import annotations

import ast
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
from infra_support import resolve

ACCOUNT = "123456789012"
NAME = "ds"
BUCKET_ARN = "arn:aws:s3:::bkt"
CLUSTER_ARN = f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/{NAME}"
# IAM offers no resource-level scope for these (ListTasks is scoped by its cluster condition)
UNSCOPABLE = {"ecr:GetAuthorizationToken", "ecs:ListTasks"}


def arn_role(suffix: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:role/{NAME}-{suffix}"


REFS: dict[str, Any] = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": ACCOUNT,
    "Name": NAME,
    "Bucket": "bkt",
    "Bucket.Arn": BUCKET_ARN,
    "Cluster.Arn": CLUSTER_ARN,
    "ScorerTaskRole.Arn": arn_role("scorer-task"),
    "ScorerExecutionRole.Arn": arn_role("scorer-execution"),
    "UiTaskRole.Arn": arn_role("ui-task"),
    "UiExecutionRole.Arn": arn_role("ui-execution"),
    "WorkerTaskRole.Arn": arn_role("worker-task"),
    "ScorerRepository.Arn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{NAME}-scorer",
    "UiRepository.Arn": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/{NAME}-ui",
    "ScorerLogGroup.Arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/{NAME}/scorer:*",
    "UiLogGroup.Arn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:/{NAME}/ui:*",
    "UiSecretArn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:ui-AbCdEf",
    "DeadLetterQueue.Arn": f"arn:aws:sqs:us-east-1:{ACCOUNT}:{NAME}-runtask-dlq",
    "JobSourceBuckets": ["partner-exports", "archive"],
}
SCHEDULE = f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/{NAME}-jobs/"
DEFAULT_BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"


DEFAULT_BUS = f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/default"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def role_statements(
    template: dict[str, Any], role: str, promotion: bool = False
) -> list[dict[str, Any]]:
    conditions = {"CanPromote": promotion, "HasJobSources": True}
    policies = template["Resources"][role]["Properties"]["Policies"]
    return [
        st
        for policy in policies
        for st in resolve(policy["PolicyDocument"], REFS, conditions)["Statement"]
    ]


def condition_holds(condition: dict[str, Any], context: dict[str, str]) -> bool:
    for operator, pairs in condition.items():
        if_exists = operator.endswith("IfExists")
        operator = operator.removesuffix("IfExists")
        for key, wanted in pairs.items():
            have = context.get(key)
            if have is None:
                if if_exists:
                    continue
                return False
            if operator in ("StringEquals", "ArnEquals"):
                ok = have in as_list(wanted)
            elif operator in ("StringLike", "ArnLike"):
                ok = any(fnmatchcase(have, w) for w in as_list(wanted))
            else:
                raise AssertionError(f"evaluator does not know condition operator {operator}")
            if not ok:
                return False
    return True


def allowed(statements: list[dict[str, Any]], action: str, resource: str, **context: str) -> bool:
    for st in statements:
        assert st["Effect"] == "Allow", "identity policies here only allow"
        if not any(fnmatchcase(action, a) for a in as_list(st["Action"])):
            continue
        if not any(fnmatchcase(resource, r) for r in as_list(st["Resource"])):
            continue
        if condition_holds(st.get("Condition", {}), context):
            return True
    return False


def roles(template: dict[str, Any]) -> list[str]:
    return [k for k, r in template["Resources"].items() if r["Type"] == "AWS::IAM::Role"]


# --- blanket rules -----------------------------------------------------------------------------
def test_no_allow_has_a_wildcard_action_or_not_action(template) -> None:
    for role in roles(template):
        for promotion in (False, True):
            for st in role_statements(template, role, promotion):
                assert not {"NotAction", "NotResource"} & set(st), role
                for action in as_list(st["Action"]):
                    assert not {"*", "?"} & set(action), f"{role}: {action}"


def test_resource_star_only_where_nothing_can_be_named(template) -> None:
    stars = []
    for role in roles(template):
        for st in role_statements(template, role, promotion=True):
            if "*" in as_list(st["Resource"]):
                stars.append((role, st["Action"]))
                assert set(as_list(st["Action"])) <= UNSCOPABLE, f"{role}: {st}"
    assert stars == [
        ("ScorerExecutionRole", "ecr:GetAuthorizationToken"),
        ("UiExecutionRole", "ecr:GetAuthorizationToken"),
        ("ScorerTaskRole", "ecs:ListTasks"),
    ]
    for st in role_statements(template, "ScorerTaskRole"):
        if st["Action"] == "ecs:ListTasks":  # the star is bounded by the cluster
            assert st["Condition"] == {"ArnEquals": {"ecs:cluster": CLUSTER_ARN}}


def test_no_managed_policies_and_every_trust_is_one_service_in_this_account(template) -> None:
    for role in roles(template):
        props = template["Resources"][role]["Properties"]
        assert "ManagedPolicyArns" not in props, f"{role} attaches broad managed policies"
        (trust,) = resolve(props["AssumeRolePolicyDocument"], REFS)["Statement"]
        assert isinstance(trust["Principal"]["Service"], str)
        assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}


def test_resource_policies_name_a_service_principal_and_a_condition(template) -> None:
    for logical in ("DeadLetterQueuePolicy", "AlarmTopicPolicy"):
        doc = template["Resources"][logical]["Properties"]["PolicyDocument"]
        for st in doc["Statement"]:
            assert st["Effect"] == "Allow"
            assert set(st["Principal"]) == {"Service"}
            assert st.get("Condition"), f"{logical}: a service principal needs a source scope"


# --- what each role may do: a table of requests -------------------------------------------------
KEY = f"{BUCKET_ARN}/"
TD = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task-definition/{NAME}"
ON_CLUSTER = {"ecs:cluster": CLUSTER_ARN}
TASK = f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/{NAME}/"
WORKER_TAG = "aws:ResourceTag/dropscore:role"
CASES = [
    # role, action, resource, context, allowed, id
    ("ScorerTaskRole", "s3:GetObject", KEY + "incoming/a/b.csv", {}, True,
     "scorer reads an input"),
    ("ScorerTaskRole", "s3:GetObjectVersion", KEY + "incoming/a/b.csv", {}, True,
     "scorer reads a given input version"),
    ("ScorerTaskRole", "s3:GetObject", KEY + "models/claims/3/model.pkl", {}, True,
     "scorer reads a model"),
    ("ScorerTaskRole", "s3:PutObject", KEY + "scored/a/b/run/manifest.json", {}, True,
     "scorer writes a result"),
    ("ScorerTaskRole", "s3:AbortMultipartUpload", KEY + "scored/a/b/run/predictions.csv", {},
     True, "scorer cleans up its multipart uploads"),
    ("ScorerTaskRole", "s3:ListBucketMultipartUploads", BUCKET_ARN, {}, True,
     "a committed run lists the uploads a killed run left"),
    ("ScorerTaskRole", "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "incoming/"}, True,
     "scorer (sweep) lists inputs"),
    ("ScorerTaskRole", "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "private/"}, False,
     "scorer cannot list other prefixes"),
    ("ScorerTaskRole", "s3:ListBucket", BUCKET_ARN, {}, True,
     "scorer gets 404 not 403 for a missing manifest (S3 checks ListBucket without a prefix)"),
    ("ScorerTaskRole", "s3:ListBucketVersions", BUCKET_ARN, {"s3:prefix": "incoming/"}, True,
     "scorer (sweep) lists input versions"),
    ("ScorerTaskRole", "s3:ListBucketVersions", BUCKET_ARN, {"s3:prefix": "models/"}, False,
     "scorer cannot list versions elsewhere"),
    ("ScorerTaskRole", "s3:PutObject", KEY + "incoming/x.csv", {}, False,
     "scorer cannot write inputs"),
    ("ScorerTaskRole", "s3:PutObject", KEY + "models/claims/aliases/production.json", {}, False,
     "scorer cannot promote"),
    ("ScorerTaskRole", "s3:DeleteObject", KEY + "scored/a/b/run/manifest.json", {}, False,
     "scorer cannot delete results"),
    ("ScorerTaskRole", "s3:GetObject", KEY + "private/x", {}, False,
     "scorer cannot read other prefixes"),
    ("UiTaskRole", "s3:GetObject", KEY + "scored/a/b/run/predictions.csv", {}, True,
     "UI reads results"),
    ("UiTaskRole", "s3:GetObject", KEY + "models/claims/aliases/production.json", {}, True,
     "UI reads models"),
    ("UiTaskRole", "s3:PutObject", KEY + "incoming/upload.csv", {}, True, "UI uploads an input"),
    ("UiTaskRole", "s3:GetObject", KEY + "jobs/nightly/occurrences/20260101T0200Z.json", {}, True,
     "UI reads jobs and their occurrence summaries (Schedules page)"),
    ("UiTaskRole", "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "jobs/"}, True,
     "UI lists the jobs"),
    ("UiTaskRole", "s3:PutObject", KEY + "jobs/nightly.json", {}, False,
     "UI cannot change jobs"),
    ("UiTaskRole", "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "scored/"}, True,
     "UI lists results"),
    ("UiTaskRole", "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "incoming/"}, False,
     "UI cannot list raw inputs by prefix"),
    ("UiTaskRole", "s3:GetObject", KEY + "incoming/uploads/claims-20261125T120000-a1b2c3.csv", {},
     True, "UI reads back its own upload"),
    ("UiTaskRole", "s3:GetObject", KEY + "incoming/someone-elses.csv", {}, False,
     "UI cannot read raw inputs"),
    ("UiTaskRole", "s3:PutObject", KEY + "scored/a/b/run/manifest.json", {}, False,
     "UI cannot forge results"),
    ("UiTaskRole", "s3:PutObject", KEY + "models/claims/aliases/production.json", {}, False,
     "UI cannot promote when promotion is off"),
    ("UiTaskRole", "s3:PutObject", KEY + "models/claims/9/model.pkl", {}, False,
     "UI cannot write model files"),
    ("EventsRunTaskRole", "ecs:RunTask",
     TD + "-scorer:7", ON_CLUSTER,
     True, "EventBridge runs the scorer family on the cluster"),
    ("EventsRunTaskRole", "ecs:RunTask",
     TD + "-scorer:7",
     {"ecs:cluster": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/other"}, False,
     "EventBridge cannot run it on another cluster"),
    ("EventsRunTaskRole", "ecs:RunTask",
     TD + "-ui:1", ON_CLUSTER,
     False, "EventBridge cannot run the UI family"),
    ("EventsRunTaskRole", "ecs:RunTask",
     TD + "-scorer-evil:1",
     ON_CLUSTER, False, "EventBridge cannot run a look-alike family"),
    ("EventsRunTaskRole", "iam:PassRole", arn_role("scorer-task"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, True,
     "EventBridge passes the scorer task role"),
    ("EventsRunTaskRole", "iam:PassRole", arn_role("scorer-execution"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, True,
     "EventBridge passes the scorer execution role"),
    ("EventsRunTaskRole", "iam:PassRole", arn_role("ui-task"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, False,
     "EventBridge cannot pass the UI role"),
    ("SchedulerRunTaskRole", "ecs:RunTask",
     TD + "-sweep:2", ON_CLUSTER,
     True, "the scheduler runs the sweep family"),
    ("SchedulerRunTaskRole", "ecs:RunTask",
     TD + "-scorer:2",
     ON_CLUSTER, False, "the scheduler cannot run the per-file family"),
    ("SchedulerRunTaskRole", "sqs:SendMessage", REFS["DeadLetterQueue.Arn"], {}, True,
     "the scheduler dead-letters into the DLQ"),
    ("JobsSchedulerRole", "ecs:RunTask", TD + "-scorer:4", ON_CLUSTER, True,
     "the jobs' scheduler runs the scorer family (jobs run NAME)"),
    ("JobsSchedulerRole", "ecs:RunTask", TD + "-sweep:4", ON_CLUSTER, False,
     "the jobs' scheduler cannot run the sweep family"),
    ("JobsSchedulerRole", "ecs:RunTask", TD + "-ui:1", ON_CLUSTER, False,
     "the jobs' scheduler cannot run the UI family"),
    ("JobsSchedulerRole", "iam:PassRole", arn_role("scorer-task"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, True,
     "the jobs' scheduler passes the scorer task role"),
    ("JobsSchedulerRole", "iam:PassRole", arn_role("ui-task"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, False,
     "the jobs' scheduler cannot pass the UI role"),
    ("JobsSchedulerRole", "sqs:SendMessage", REFS["DeadLetterQueue.Arn"], {}, True,
     "the jobs' scheduler dead-letters into the DLQ"),
    ("ScorerTaskRole", "scheduler:CreateSchedule", SCHEDULE + "nightly", {}, True,
     "jobs add creates a schedule in the jobs group"),
    ("ScorerTaskRole", "scheduler:DeleteSchedule", SCHEDULE + "nightly", {}, True,
     "jobs remove deletes a schedule in the jobs group"),
    ("ScorerTaskRole", "scheduler:DeleteSchedule",
     f"arn:aws:scheduler:us-east-1:{ACCOUNT}:schedule/default/{NAME}-sweep", {}, False,
     "the scorer cannot touch schedules outside the jobs group (the sweep's)"),
    ("ScorerTaskRole", "iam:PassRole", arn_role("jobs-scheduler"),
     {"iam:PassedToService": "scheduler.amazonaws.com"}, True,
     "jobs add passes the jobs' scheduler role to Scheduler"),
    ("ScorerTaskRole", "iam:PassRole", arn_role("scorer-task"),
     {"iam:PassedToService": "scheduler.amazonaws.com"}, False,
     "the scorer cannot pass its own role to Scheduler"),
    ("ScorerTaskRole", "s3:PutObject", KEY + "jobs/nightly.json", {}, True,
     "jobs add writes the job"),
    ("ScorerTaskRole", "s3:DeleteObject", KEY + "jobs/nightly.json", {}, True,
     "jobs remove deletes the job"),
    ("ScorerTaskRole", "s3:ListBucket", BUCKET_ARN, {"s3:prefix": "jobs/"}, True,
     "jobs list lists the jobs"),
    ("ScorerTaskRole", "s3:GetObject", "arn:aws:s3:::archive/2025/a.csv", {}, True,
     "a job reads its source in a JobSourceBuckets bucket"),
    ("ScorerTaskRole", "s3:ListBucket", "arn:aws:s3:::partner-exports", {}, True,
     "a job lists its source in a JobSourceBuckets bucket"),
    ("ScorerTaskRole", "s3:PutObject", "arn:aws:s3:::partner-exports/a.csv", {}, False,
     "sources are read-only"),
    ("ScorerTaskRole", "s3:GetObject", "arn:aws:s3:::elsewhere/a.csv", {}, False,
     "no other bucket is readable"),
    ("ScorerTaskRole", "events:PutEvents", DEFAULT_BUS, {"events:source": "dropscore"}, True,
     "a job occurrence puts Job Completed on the default bus"),
    ("ScorerTaskRole", "events:PutEvents", DEFAULT_BUS, {"events:source": "dropscore"}, True,
     "the scorer puts run events on the default bus"),
    ("ScorerTaskRole", "events:PutEvents", DEFAULT_BUS, {"events:source": "aws.s3"}, False,
     "the scorer cannot forge another service's events"),
    ("ScorerTaskRole", "events:PutEvents", f"arn:aws:events:us-east-1:{ACCOUNT}:event-bus/x",
     {"events:source": "dropscore"}, False, "the scorer puts events on no other bus"),
    ("UiTaskRole", "events:PutEvents", DEFAULT_BUS, {"events:source": "dropscore"}, False,
     "the UI puts no run events"),
    ("ScorerExecutionRole", "ecr:BatchGetImage", REFS["ScorerRepository.Arn"], {}, True,
     "ECS pulls the scorer image"),
    ("ScorerExecutionRole", "ecr:BatchGetImage", REFS["UiRepository.Arn"], {}, False,
     "the scorer's execution role cannot pull the UI image"),
    ("ScorerExecutionRole", "s3:GetObject", KEY + "incoming/a.csv", {}, False,
     "execution roles have no data access"),
    ("ScorerExecutionRole", "secretsmanager:GetSecretValue", REFS["UiSecretArn"], {}, False,
     "the scorer cannot read the UI's sign-in secret"),
    ("UiExecutionRole", "secretsmanager:GetSecretValue", REFS["UiSecretArn"], {}, True,
     "ECS reads the UI's sign-in secret"),
    # Dask workers on Fargate (scorer/fargate.py): the scorer starts, watches and stops them
    ("ScorerTaskRole", "ecs:RunTask", TD + "-worker:3", ON_CLUSTER, True,
     "the scorer starts Dask workers of the worker family on the cluster"),
    ("ScorerTaskRole", "ecs:RunTask", TD + "-worker:3",
     {"ecs:cluster": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/other"}, False,
     "the scorer cannot start workers on another cluster"),
    ("ScorerTaskRole", "ecs:RunTask", TD + "-scorer:3", ON_CLUSTER, False,
     "the scorer cannot start scorer tasks"),
    ("ScorerTaskRole", "ecs:RunTask", TD + "-ui:1", ON_CLUSTER, False,
     "the scorer cannot start the UI family"),
    ("ScorerTaskRole", "ecs:RunTask", TD + "-worker-evil:1", ON_CLUSTER, False,
     "the scorer cannot start a look-alike family"),
    ("ScorerTaskRole", "iam:PassRole", arn_role("worker-task"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, True,
     "the scorer passes the worker's task role to ECS"),
    ("ScorerTaskRole", "iam:PassRole", arn_role("scorer-execution"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, True,
     "the scorer passes the worker's execution role to ECS"),
    ("ScorerTaskRole", "iam:PassRole", arn_role("worker-task"),
     {"iam:PassedToService": "lambda.amazonaws.com"}, False,
     "the scorer passes the worker's role to no other service"),
    ("ScorerTaskRole", "iam:PassRole", arn_role("scorer-task"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, False,
     "the scorer cannot pass its own role to a task"),
    ("ScorerTaskRole", "iam:PassRole", arn_role("ui-task"),
     {"iam:PassedToService": "ecs-tasks.amazonaws.com"}, False,
     "the scorer cannot pass the UI's role"),
    ("ScorerTaskRole", "ecs:StopTask", TASK + "abc",
     {**ON_CLUSTER, WORKER_TAG: "worker"}, True, "the scorer stops a worker task"),
    ("ScorerTaskRole", "ecs:StopTask", TASK + "abc", ON_CLUSTER, False,
     "the scorer cannot stop a task not tagged as a worker (another scorer, the UI)"),
    ("ScorerTaskRole", "ecs:StopTask", f"arn:aws:ecs:us-east-1:{ACCOUNT}:task/other/abc",
     {"ecs:cluster": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/other", WORKER_TAG: "worker"},
     False, "the scorer stops no task on another cluster"),
    ("ScorerTaskRole", "ecs:DescribeTasks", TASK + "abc", ON_CLUSTER, True,
     "the scorer watches tasks on its cluster (workers, and whether a coordinator runs)"),
    ("ScorerTaskRole", "ecs:ListTasks", "*", ON_CLUSTER, True,
     "the sweep lists the cluster's tasks to find orphan workers"),
    ("ScorerTaskRole", "ecs:ListTasks", "*",
     {"ecs:cluster": f"arn:aws:ecs:us-east-1:{ACCOUNT}:cluster/other"}, False,
     "the sweep lists no other cluster"),
    ("ScorerTaskRole", "ecs:TagResource", TASK + "abc", {"ecs:CreateAction": "RunTask"}, True,
     "RunTask may tag the workers it starts"),
    ("ScorerTaskRole", "ecs:TagResource", TASK + "abc", {}, False,
     "the scorer cannot retag a running task (e.g. as a worker, to stop it)"),
    ("WorkerTaskRole", "s3:GetObjectVersion", KEY + "incoming/a/b.csv", {}, True,
     "a worker reads its shard of an input version"),
    ("WorkerTaskRole", "s3:GetObject", KEY + "models/claims/3/model.pkl", {}, True,
     "a worker reads the model"),
    ("WorkerTaskRole", "s3:PutObject", KEY + "scored/a/b/run/predictions.csv", {}, True,
     "a worker uploads its part of the outputs"),
    ("WorkerTaskRole", "s3:GetObject", "arn:aws:s3:::archive/2025/a.csv", {}, True,
     "a worker reads a job's source in a JobSourceBuckets bucket"),
    ("WorkerTaskRole", "s3:PutObject", KEY + "incoming/x.csv", {}, False,
     "a worker cannot write inputs"),
    ("WorkerTaskRole", "s3:PutObject", KEY + "models/claims/aliases/production.json", {}, False,
     "a worker cannot promote"),
    ("WorkerTaskRole", "s3:DeleteObject", KEY + "scored/a/b/run/manifest.json", {}, False,
     "a worker cannot delete results"),
    ("WorkerTaskRole", "s3:GetObject", KEY + "jobs/nightly.json", {}, False,
     "a worker cannot read jobs"),
    ("WorkerTaskRole", "ecs:RunTask", TD + "-worker:3", ON_CLUSTER, False,
     "a worker cannot start more workers"),
    ("WorkerTaskRole", "events:PutEvents", DEFAULT_BUS, {"events:source": "dropscore"}, False,
     "a worker puts no run events (only the committing coordinator does)"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("role", "action", "resource", "context", "expected"),
    [c[:5] for c in CASES],
    ids=[c[5] for c in CASES],
)
def test_role_may_do_exactly_its_job(template, role, action, resource, context, expected) -> None:
    assert allowed(role_statements(template, role), action, resource, **context) is expected


PROMOTION_CASES = [
    ("s3:PutObject", KEY + "models/claims/aliases/production.json", True,
     "UI rewrites an alias when promotion is on"),
    ("s3:PutObject", KEY + "models/claims/9/model.pkl", False,
     "UI still cannot write model files"),
    ("s3:PutObject", KEY + "models/claims/9/card.json", False,
     "UI still cannot write model cards"),
]  # fmt: skip
HISTORY = KEY + "models/claims/history/20261129T120000-000000Z-production-v1-v2.json"


@pytest.mark.parametrize(
    ("context", "expected"),
    [({"s3:if-none-match": "*"}, True), ({}, False)],
    ids=["UI appends a promotion record (create-only)", "UI cannot rewrite a promotion record"],
)
def test_promotion_history_is_append_only_for_the_ui(template, context, expected) -> None:
    statements = role_statements(template, "UiTaskRole", promotion=True)
    assert allowed(statements, "s3:PutObject", HISTORY, **context) is expected
    assert not allowed(role_statements(template, "UiTaskRole"), "s3:PutObject", HISTORY, **context)


@pytest.mark.parametrize(
    ("action", "resource", "expected"),
    [c[:3] for c in PROMOTION_CASES],
    ids=[c[3] for c in PROMOTION_CASES],
)
def test_promotion_parameter_grants_only_alias_writes(template, action, resource, expected):
    statements = role_statements(template, "UiTaskRole", promotion=True)
    assert allowed(statements, action, resource) is expected


# --- every S3 call the scorer makes, found in its code, is allowed --------------------------------
SCORER = Path(__file__).resolve().parents[2] / "scorer"
# Files of scorer/ (paths under it) not run under the scorer's role: `scorer check` (an
# operator's credentials; it reads every version under scored/). The local stack is devstack/.
NOT_THE_SCORER_ROLE = {"check.py"}
# One client method → the IAM request(s) S3 authorises it with, on each place the scorer uses it.
# `None`: the scorer's role must NOT be able to do it (the call serves another component).
READ = [
    (KEY + p, {})
    for p in ("incoming/a/b.csv", "scored/a/b/r/manifest.json", "models/m/1/card.json")
]
LIST = [(BUCKET_ARN, {"s3:prefix": p}) for p in ("incoming/", "scored/", "models/")] + [
    (BUCKET_ARN, {})
]
WRITE = [(KEY + "scored/a/b/r/predictions.csv", {})]
S3_OPS: dict[str, tuple[list[str], list[tuple[str, dict[str, str]]]] | None] = {
    "head_object": (["s3:GetObject", "s3:GetObjectVersion"], READ),
    "get_object": (["s3:GetObject", "s3:GetObjectVersion"], READ),
    "list_objects_v2": (["s3:ListBucket"], LIST),
    "list_object_versions": (["s3:ListBucketVersions"], [(BUCKET_ARN, {"s3:prefix": "incoming/"})]),
    "put_object": (["s3:PutObject"], WRITE),
    "create_multipart_upload": (["s3:PutObject"], WRITE),
    "upload_part": (["s3:PutObject"], WRITE),
    "complete_multipart_upload": (["s3:PutObject"], WRITE),
    "abort_multipart_upload": (["s3:AbortMultipartUpload"], WRITE),
    "list_multipart_uploads": (["s3:ListBucketMultipartUploads"], [(BUCKET_ARN, {})]),
    "delete_object": None,  # registry.delete: training cleans up a half-published version
}
BOTO3_NON_REQUESTS = {"get_paginator", "paginate", "client"}


def s3_calls_in_scorer() -> dict[str, list[str]]:
    """Every boto3 S3 operation named in the scorer's code: `x.<op>(...)` on a client
    (`client`, `s3_client()`) and `get_paginator("<op>")`, with where each is."""
    found: dict[str, list[str]] = {}
    for path in sorted(SCORER.rglob("*.py")):  # scorer/storage/ is a package
        if path.relative_to(SCORER).as_posix() in NOT_THE_SCORER_ROLE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            target, op = node.func.value, node.func.attr
            is_client = (isinstance(target, ast.Name) and target.id == "client") or (
                isinstance(target, ast.Call)
                and (
                    (isinstance(target.func, ast.Name) and target.func.id == "s3_client")
                    or (isinstance(target.func, ast.Attribute) and target.func.attr == "s3_client")
                )
            )
            if op == "get_paginator" and is_client:
                (arg,) = node.args
                assert isinstance(arg, ast.Constant), f"{path.name}:{node.lineno}"
                op = str(arg.value)
            elif not is_client or op in BOTO3_NON_REQUESTS:
                continue
            found.setdefault(op, []).append(f"{path.name}:{node.lineno}")
    return found


def test_every_file_exempted_from_the_scorer_role_exists() -> None:
    """An exemption naming a file that moved or went away hides nothing today but would exempt
    a new file of that name tomorrow."""
    missing = sorted(name for name in NOT_THE_SCORER_ROLE if not (SCORER / name).is_file())
    assert missing == [], f"NOT_THE_SCORER_ROLE names files scorer/ no longer holds: {missing}"


def test_the_scan_sees_the_scorers_s3_calls() -> None:
    # guards the scan itself: if storage.py changes shape, an empty scan must not pass
    calls = s3_calls_in_scorer()
    assert {"get_object", "put_object", "list_multipart_uploads"} <= set(calls), calls


def test_every_s3_call_the_scorer_makes_is_allowed_to_its_role(template) -> None:
    statements = role_statements(template, "ScorerTaskRole")
    problems = []
    for op, where in s3_calls_in_scorer().items():
        if op not in S3_OPS:
            problems.append(f"{op} ({', '.join(where)}): unmapped; add it to S3_OPS")
            continue
        mapping = S3_OPS[op]
        if mapping is None:
            continue
        actions, requests = mapping
        for action in actions:
            for resource, context in requests:
                if not allowed(statements, action, resource, **context):
                    problems.append(f"{op} ({', '.join(where)}): {action} on {resource} {context}")
    assert not problems, "\n".join(problems)


def test_calls_the_scorer_must_not_make_are_denied(template) -> None:
    statements = role_statements(template, "ScorerTaskRole")
    assert not allowed(statements, "s3:DeleteObject", KEY + "models/m/1/model.pkl")
    assert not allowed(statements, "s3:DeleteObject", KEY + "scored/a/b/r/manifest.json")


# --- every Scheduler / EventBridge call the scorer makes is allowed -----------------------------
def scheduler_and_events_calls() -> dict[str, str]:
    """Operations of the scheduler and events clients named in the scorer's code (any
    ``x.<op>(``), as IAM actions: snake_case method → ``service:OperationName``."""
    import boto3
    from botocore import xform_name

    ops = {}
    for service in ("scheduler", "events"):
        model = (
            boto3.session.Session().get_available_services()
            and boto3.client(service, region_name="us-east-1").meta.service_model
        )
        for name in model.operation_names:
            ops[xform_name(name)] = f"{service}:{name}"
    found = {}
    for path in sorted(SCORER.rglob("*.py")):  # scorer/storage/ is a package
        if path.relative_to(SCORER).as_posix() in NOT_THE_SCORER_ROLE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in ops:
                found[ops[node.attr]] = f"{path.name}:{node.lineno}"
    return found


def test_every_scheduler_and_events_call_is_allowed_to_the_scorer_role(template) -> None:
    calls = scheduler_and_events_calls()
    assert {"scheduler:CreateSchedule", "events:PutEvents"} <= set(calls), calls  # the scan works
    statements = role_statements(template, "ScorerTaskRole")
    resource = {"scheduler": SCHEDULE + "nightly", "events": DEFAULT_BUS}
    denied = [
        f"{action} ({where})"
        for action, where in calls.items()
        # every event the scorer puts has source dropscore (scorer/notify.py, the one publisher)
        if not allowed(
            statements, action, resource[action.split(":")[0]], **{"events:source": "dropscore"}
        )
    ]
    assert not denied


# --- every ECS call scorer/fargate.py makes is allowed, on the worker family / tasks only -------
def ecs_calls_in_scorer() -> dict[str, str]:
    """ECS operations named in the scorer's code (``x.<op>(`` and ``get_paginator("<op>")``),
    as IAM actions."""
    import boto3
    from botocore import xform_name

    model = boto3.client("ecs", region_name="us-east-1").meta.service_model
    ops = {xform_name(name): f"ecs:{name}" for name in model.operation_names}
    found = {}
    for path in sorted(SCORER.glob("*.py")):
        if path.relative_to(SCORER).as_posix() in NOT_THE_SCORER_ROLE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr in ops:
                found[ops[node.attr]] = f"{path.name}:{node.lineno}"
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get_paginator"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and node.args[0].value in ops
            ):
                found[ops[node.args[0].value]] = f"{path.name}:{node.lineno}"
    return found


# One ECS action → the request it is authorised with, as scorer/fargate.py makes it.
WORKER_TASK = (TASK + "0123", {**ON_CLUSTER, WORKER_TAG: "worker"})
ECS_REQUESTS = {
    "ecs:RunTask": [(TD + "-worker:3", ON_CLUSTER)],
    "ecs:DescribeTasks": [(TASK + "0123", ON_CLUSTER)],
    "ecs:StopTask": [WORKER_TASK],
    "ecs:ListTasks": [("*", ON_CLUSTER)],
}


def test_every_ecs_call_the_scorer_makes_is_allowed_to_its_role(template) -> None:
    calls = ecs_calls_in_scorer()
    assert set(calls) == set(ECS_REQUESTS), f"map each ECS call the scorer makes: {calls}"
    statements = role_statements(template, "ScorerTaskRole")
    for action, requests in ECS_REQUESTS.items():
        for resource, context in requests:
            assert allowed(statements, action, resource, **context), (action, calls[action])
    # RunTask with tags (fargate.FargateWorkers.start) also needs TagResource on the new task
    assert allowed(statements, "ecs:TagResource", TASK + "0123", **{"ecs:CreateAction": "RunTask"})
    # and it passes the worker family's two roles
    td = template["Resources"]["WorkerTaskDefinition"]["Properties"]
    for role in (td["TaskRoleArn"], td["ExecutionRoleArn"]):
        arn = resolve(role, REFS)
        assert allowed(
            statements, "iam:PassRole", arn, **{"iam:PassedToService": "ecs-tasks.amazonaws.com"}
        )
