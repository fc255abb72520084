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
}

data "cloudflare_ip_ranges" "this" {}

################################################################################
# Shared secrets: the edge's RUNNER_TOKEN is the runners' API_TOKEN, and the edge's
# RUNNER_WEBHOOK_SECRET is the runners' WEBHOOK_SIGNING_SECRET.
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
# GPU runners
################################################################################

module "runners" {
  source = "../../modules/gpu-runner-fleet"

  name                 = "${var.name}-runner"
  image                = var.runner_image
  instance_type        = var.instance_type
  vpc_id               = var.vpc_id
  subnet_ids           = var.subnet_ids
  alb_subnet_ids       = var.alb_subnet_ids
  alb_certificate_arn  = var.alb_certificate_arn
  cloudflare_ip_ranges = data.cloudflare_ip_ranges.this.ipv4_cidrs
  min_size             = var.min_runners
  max_size             = var.max_runners
  model_s3_uri         = var.model_s3_uri

  ort_providers        = "cuda,cpu"
  ort_intra_op_threads = 4

  s3_bucket           = module.storage.bucket_name
  s3_region           = module.storage.s3_region
  s3_endpoint         = module.storage.s3_endpoint
  s3_force_path_style = module.storage.s3_force_path_style
  s3_public_base_url  = module.storage.public_base_url
  # On AWS the instance role carries the bucket policy; on R2 the runners get the bucket-scoped token as keys.
  s3_iam_policy_json   = module.storage.runner_iam_policy_json
  s3_access_key_id     = var.storage_backend == "r2" ? module.storage.runner_access_key_id : null
  s3_secret_access_key = var.storage_backend == "r2" ? module.storage.runner_secret_access_key : null

  api_token              = random_password.runner_token.result
  webhook_signing_secret = "whsec_${random_bytes.runner_webhook_secret.base64}"

  scaling = {
    queue_name = module.edge.queue_name
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

  models = [{
    id        = local.model_id
    version   = local.model_version
    backend   = "cog"
    runners   = module.runners.runner_pool
    tokenizer = local.model_version
  }]

  runner_token           = random_password.runner_token.result
  runner_webhook_secret  = "whsec_${random_bytes.runner_webhook_secret.base64}"
  webhook_signing_secret = "whsec_${random_bytes.client_webhook_secret.base64}"
  token_signing_secret   = random_password.token_signing_secret.result
}
