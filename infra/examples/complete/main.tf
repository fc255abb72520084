# The whole system on real accounts: the edge worker on Cloudflare, the image bucket, and the GPU runner fleet on
# AWS, with the shared secrets generated here so the edge and the runners agree on them.

provider "aws" {
  region = var.aws_region
}

provider "cloudflare" {
  # Reads CLOUDFLARE_API_TOKEN from the environment.
}

locals {
  model_id      = "sd/default"
  model_version = "default-v1"
  # The pool key the edge, the runners (EDGE_MODEL) and the Backlog metric's Model dimension share.
  model = "${local.model_id}:${local.model_version}"
}

################################################################################
# Shared secrets: the edge's RUNNER_TOKEN is the runners' EDGE_RUNNER_TOKEN.
################################################################################

resource "random_password" "runner_token" {
  length  = 48
  special = false
}

resource "random_bytes" "runner_webhook_secret" {
  length = 32
}

resource "random_bytes" "client_webhook_secret" {
  length = 32
}

resource "random_password" "token_signing_secret" {
  length  = 64
  special = false
}

resource "random_password" "operator_token" {
  length  = 48
  special = false
}

################################################################################
# Storage
################################################################################

module "storage" {
  source = "../../modules/object-storage"

  backend               = var.storage_backend
  bucket_name           = var.bucket_name
  aws_region            = var.aws_region
  cloudflare_account_id = var.cloudflare_account_id
  cors_allowed_origins  = length(var.allowed_origins) > 0 ? var.allowed_origins : ["*"]
}

################################################################################
# GPU runners: pull work from the edge, scale on its Backlog metric, sleep at zero
################################################################################

module "runners" {
  source = "../../modules/gpu-runner-fleet"

  name             = "${var.name}-runner"
  image            = var.runner_image
  instance_type    = var.instance_type
  vpc_id           = var.vpc_id
  subnet_ids       = var.subnet_ids
  assign_public_ip = var.runner_public_ip
  min_size         = var.min_runners
  max_size         = var.max_runners
  model_s3_uri     = var.model_s3_uri

  edge_url          = module.edge.url
  edge_runner_token = random_password.runner_token.result
  model             = local.model

  ort_providers        = "cuda,cpu"
  ort_intra_op_threads = 4

  s3_bucket           = module.storage.bucket_name
  s3_region           = module.storage.s3_region
  s3_endpoint         = module.storage.s3_endpoint
  s3_force_path_style = module.storage.s3_force_path_style
  s3_public_base_url  = module.storage.public_base_url
  # On AWS the instance role carries the bucket policy; on R2 the runners get the bucket-scoped token as keys.
  s3_iam_policy_json   = module.storage.runner_iam_policy_json
  use_s3_access_keys   = var.storage_backend == "r2"
  s3_access_key_id     = module.storage.runner_access_key_id
  s3_secret_access_key = module.storage.runner_secret_access_key

  scaling = {
    metric_namespace = var.metric_namespace
    idle_minutes     = var.idle_minutes
  }
}

################################################################################
# Edge
################################################################################

module "edge" {
  source = "../../modules/edge-worker"

  account_id            = var.cloudflare_account_id
  name                  = "${var.name}-edge"
  script_path           = var.worker_script_path
  workers_dev_subdomain = var.workers_dev_subdomain
  zone_id               = var.zone_id
  custom_domain         = var.custom_domain
  allowed_origins       = var.allowed_origins

  # A pull-only pool: no push targets, the fleet's runners lease from the edge.
  models = [{
    id        = local.model_id
    version   = local.model_version
    backend   = "cog"
    runners   = []
    tokenizer = local.model_version
  }]

  runner_token           = random_password.runner_token.result
  runner_webhook_secret  = "whsec_${random_bytes.runner_webhook_secret.base64}"
  webhook_signing_secret = "whsec_${random_bytes.client_webhook_secret.base64}"
  token_signing_secret   = random_password.token_signing_secret.result
  operator_token         = random_password.operator_token.result

  # The cron trigger publishes Backlog with the fleet's PutMetricData-only key into the namespace the alarms read.
  cloudwatch = {
    region    = var.aws_region
    namespace = var.metric_namespace
  }
  cloudwatch_access_key_id     = module.runners.metrics_publisher_access_key_id
  cloudwatch_secret_access_key = module.runners.metrics_publisher_secret_access_key
}
