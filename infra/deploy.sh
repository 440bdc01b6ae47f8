#!/usr/bin/env bash
# dropscore on AWS in one command (called by `make deploy` / `make destroy`).
#
#   bash infra/deploy.sh deploy    build + push both images, deploy the stack, print the UI URL
#   bash infra/deploy.sh destroy   delete the stack (the bucket and its data are kept)
#
# Settings (environment):
#   DROPSCORE_STACK        stack name (default: dropscore)
#   DROPSCORE_PARAMETERS   JSON object of template parameters (default: infra/parameters.json,
#                          start from infra/parameters.example.json)
#   DROPSCORE_IMAGE_TAG    deploy images already in ECR under this tag; skips the Docker build
#   AWS_PROFILE / AWS_REGION / AWS_* as for the AWS CLI
set -euo pipefail
cd "$(dirname "$0")/.."

STACK="${DROPSCORE_STACK:-dropscore}"
PARAMS_FILE="${DROPSCORE_PARAMETERS:-infra/parameters.json}"
TEMPLATE="infra/template.yaml"
PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"

say() { echo "deploy: $*"; }
die() { echo "deploy: $*" >&2; exit 1; }

# --- prerequisites: each refusal is one line that says what to do ------------------------------
need_aws() {
  command -v aws >/dev/null 2>&1 \
    || die "refusing: the AWS CLI is not installed (https://aws.amazon.com/cli/), so nothing can be deployed"
  aws sts get-caller-identity --query Account --output text >/dev/null 2>&1 \
    || die "refusing: no usable AWS credentials ('aws sts get-caller-identity' failed); set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
  REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region 2>/dev/null || true)}}"
  [ -n "$REGION" ] || die "refusing: no AWS region; set AWS_REGION (e.g. us-east-1)"
  export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"
}

need_docker() {
  command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1 \
    || die "refusing: no Docker engine ('docker info' failed); start Docker, or set DROPSCORE_IMAGE_TAG to deploy images already in ECR"
}

need_parameters() {
  [ -f "$PARAMS_FILE" ] \
    || die "refusing: $PARAMS_FILE not found; copy infra/parameters.example.json there and fill in VPC, subnets, certificate and secret"
  # {"Key": "Value", ...} -> Key=Value lines (lists may be given as JSON arrays)
  local lines
  lines="$("$PY" - "$PARAMS_FILE" <<'EOF'
import json, sys
with open(sys.argv[1]) as fh:
    params = json.load(fh)
if not isinstance(params, dict):
    sys.exit(1)
for key, value in params.items():
    if key.startswith("_") or key == "ImageTag":
        continue  # comments; the image tag is chosen by this script
    if isinstance(value, list):
        value = ",".join(map(str, value))
    print(f"{key}={value}")
EOF
  )" || die "refusing: $PARAMS_FILE is not a JSON object of parameter names to values"
  mapfile -t PARAMS <<<"$lines"
}

# --- stack helpers -------------------------------------------------------------------------------
stack_status() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query 'Stacks[0].StackStatus' --output text 2>/dev/null || echo NONE
}

output() {  # output NAME -> value of one stack output (empty when absent)
  local value
  value="$(aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue | [0]" --output text)"
  [ "$value" = None ] || echo "$value"
}

physical_id() {  # physical_id LOGICAL_ID -> name/ARN of one of the stack's resources
  local value
  value="$(aws cloudformation list-stack-resources --stack-name "$STACK" --output text \
    --query "StackResourceSummaries[?LogicalResourceId=='$1'].PhysicalResourceId | [0]")"
  [ -n "$value" ] && [ "$value" != None ] || return 1
  echo "$value"
}

repository_uri() {  # repository_uri LOGICAL_ID -> URI of one of the stack's ECR repositories
  local name
  name="$(physical_id "$1")" || return 1
  aws ecr describe-repositories --repository-names "$name" \
    --query 'repositories[0].repositoryUri' --output text
}

rendered_template() {  # the template as compact JSON: CloudFormation takes a template of at
  # most 51,200 bytes inline, and the YAML's comments and indentation are for people (same
  # resources: tests/infra/test_deploy_script.py compares the two parsed)
  local out
  out="$(mktemp "${TMPDIR:-/tmp}/dropscore-template.XXXXXX")"
  "$PY" - "$TEMPLATE" "$out" <<'EOF' \
    || die "cannot render $TEMPLATE (cfn-lint's YAML reader is missing: run 'make install' first)"
import json, sys
from cfnlint.decode import cfn_yaml
with open(sys.argv[2], "w") as fh:
    json.dump(cfn_yaml.load(sys.argv[1]), fh, separators=(",", ":"))
EOF
  [ "$(wc -c < "$out")" -le 51200 ] \
    || die "the template is over 51,200 bytes even as compact JSON; deploy it through S3 (aws cloudformation deploy --s3-bucket)"
  echo "$out"
}

cfn_deploy() {  # cfn_deploy [Key=Value ...]: create or update the stack with the file's parameters
  local rendered status=0
  rendered="$(rendered_template)" || exit 1
  aws cloudformation deploy --stack-name "$STACK" --template-file "$rendered" \
    --capabilities CAPABILITY_NAMED_IAM --no-fail-on-empty-changeset \
    --tags "project=dropscore" \
    --parameter-overrides "${PARAMS[@]}" "$@" || status=$?
  rm -f "$rendered"
  return "$status"
}

image_exists() {  # image_exists REPOSITORY_NAME TAG
  aws ecr describe-images --repository-name "$1" --image-ids "imageTag=$2" >/dev/null 2>&1
}

image_tag() {
  local sha
  sha="$(git rev-parse --short=12 HEAD 2>/dev/null || echo nogit)"
  if [ -n "$(git status --porcelain -- scorer training ui pyproject.toml uv.lock \
               Dockerfile.scorer Dockerfile.ui .dockerignore 2>/dev/null)" ]; then
    sha="$sha-dirty-$(date -u +%Y%m%d%H%M%S)"  # tags are immutable: a dirty tree gets a fresh one
  fi
  echo "$sha"
}

# --- commands ------------------------------------------------------------------------------------
deploy() {
  need_aws
  [ -n "${DROPSCORE_IMAGE_TAG:-}" ] || need_docker
  need_parameters

  case "$(stack_status)" in
    NONE)
      say "phase 1: creating stack $STACK with the bucket and the image repositories ($REGION)"
      cfn_deploy ;;
    ROLLBACK_COMPLETE|ROLLBACK_FAILED|DELETE_FAILED)
      die "refusing: stack $STACK is in $(stack_status) and cannot be updated; run 'make destroy' first" ;;
    *) ;;
  esac

  local scorer_repo ui_repo tag
  scorer_repo="$(repository_uri ScorerRepository)" || die "stack $STACK has no scorer repository"
  ui_repo="$(repository_uri UiRepository)" || die "stack $STACK has no UI repository"

  if [ -n "${DROPSCORE_IMAGE_TAG:-}" ]; then
    tag="$DROPSCORE_IMAGE_TAG"
    for repo in "$scorer_repo" "$ui_repo"; do
      image_exists "${repo#*/}" "$tag" \
        || die "refusing: image ${repo}:${tag} is not in ECR; unset DROPSCORE_IMAGE_TAG to build and push it"
    done
  else
    tag="$(image_tag)"
    say "phase 2: building and pushing images tagged $tag"
    aws ecr get-login-password | docker login --username AWS --password-stdin "${scorer_repo%%/*}" >/dev/null
    local pairs=("Dockerfile.scorer $scorer_repo" "Dockerfile.ui $ui_repo")
    for pair in "${pairs[@]}"; do
      read -r dockerfile repo <<<"$pair"
      if image_exists "${repo#*/}" "$tag"; then
        say "$repo:$tag already in ECR (tags are immutable), not rebuilding"
        continue
      fi
      docker build --platform linux/amd64 -f "$dockerfile" -t "$repo:$tag" .
      docker push "$repo:$tag"
    done
  fi

  say "phase 3: deploying stack $STACK with images $tag"
  cfn_deploy "ImageTag=$tag"

  local bucket
  bucket="$(physical_id Bucket)"
  echo
  echo "dropscore is deployed (stack $STACK, $REGION)"
  echo "  UI:     $(output UiUrl)   (load balancer: $(output LoadBalancerDnsName))"
  echo "  bucket: $bucket"
  echo "  drop a file:  aws s3 cp claims.csv s3://$bucket/incoming/claims.csv"
  echo "  results:      aws s3 ls --recursive s3://$bucket/scored/"
  echo "  the scorer needs a production model in s3://$bucket/models"
  echo "  (python -m training train ... --registry s3://$bucket/models)"
}

destroy() {
  need_aws
  if [ "$(stack_status)" = NONE ]; then
    say "stack $STACK does not exist in $REGION; nothing to delete"
    return 0
  fi
  local bucket
  bucket="$(physical_id Bucket || echo '(none)')"
  say "deleting stack $STACK ($REGION); the bucket $bucket is kept with its data"
  aws cloudformation delete-stack --stack-name "$STACK"
  aws cloudformation wait stack-delete-complete --stack-name "$STACK"
  echo "stack $STACK deleted. Kept: bucket $bucket (DeletionPolicy Retain)."
  echo "  to delete it too, empty every object version first (console: Empty), then: aws s3 rb s3://$bucket"
}

case "${1:-}" in
  deploy) deploy ;;
  destroy) destroy ;;
  *) die "usage: bash infra/deploy.sh deploy|destroy" ;;
esac
