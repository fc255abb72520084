# The edge worker on Cloudflare: the script with every binding of edge/wrangler.jsonc, its KV namespaces, the
# every-minute Cron Trigger that publishes the backlog, Durable Object migrations sent the way wrangler sends them,
# and optional custom domain / route.

locals {
  # Binding name => KV namespace title suffix. Mirrors kv_namespaces in edge/wrangler.jsonc (test/infra.test.ts checks).
  kv_bindings = {
    KEYS       = "keys"
    EMBEDDINGS = "embeddings"
    TOKENIZERS = "tokenizers"
    # Files uploaded with POST /v1/files (Replicate's client sends img2img inputs there), kept 24 h.
    FILES = "files"
  }

  # Binding name => Durable Object class exported by edge/src/index.ts. ModelQueue: one object per model pool holding
  # the line of waiting predictions and the runners' leases (it replaced the Cloudflare Queue).
  durable_object_bindings = {
    PREDICTIONS      = "PredictionObject"
    KEY_LIMITER      = "KeyLimiter"
    PREDICTION_INDEX = "PredictionIndex"
    MODEL_QUEUE      = "ModelQueue"
  }

  # Durable Object migrations, in order, as in the migrations list of edge/wrangler.jsonc. Append only: a tag once
  # deployed is history, never edited or removed (the Workers API checks old_tag against the script's current tag).
  durable_object_migrations = [
    { tag = "v1", new_sqlite_classes = ["PredictionObject", "KeyLimiter"] },
    { tag = "v2", new_sqlite_classes = ["PredictionIndex"] },
    { tag = "v3", new_sqlite_classes = ["ModelQueue"] },
  ]
  migration_tags = [for m in local.durable_object_migrations : m.tag]

  # What wrangler deploy does (getMigrationsToUpload): read the deployed script's migration_tag from the scripts list,
  # then send old_tag = that tag and only the steps after it. Nothing is sent when the script is already at the last
  # tag, and everything (without old_tag) when the script does not exist yet.
  deployed_migration_tag = try(one([for s in data.cloudflare_workers_scripts.this.result : s.migration_tag if s.id == var.name]), null)
  deployed_migration_index = (
    local.deployed_migration_tag == null ? -1 : try(index(local.migration_tags, local.deployed_migration_tag), -1)
  )
  pending_migrations = slice(local.durable_object_migrations, local.deployed_migration_index + 1, length(local.durable_object_migrations))
  migrations = length(local.pending_migrations) == 0 ? null : {
    old_tag = local.deployed_migration_tag
    new_tag = local.migration_tags[length(local.migration_tags) - 1]
    steps   = [for m in local.pending_migrations : { new_sqlite_classes = m.new_sqlite_classes }]
  }

  # Cron Triggers of edge/wrangler.jsonc: every minute the edge pushes each model pool's backlog to CloudWatch.
  cron_schedules = ["* * * * *"]

  public_base_url = coalesce(
    var.public_base_url,
    var.custom_domain != null ? "https://${var.custom_domain}" : null,
    var.workers_dev_subdomain != null ? "https://${var.name}.${var.workers_dev_subdomain}.workers.dev" : null,
    "https://${var.name}.workers.dev",
  )

  # Null values are not bound (the CloudWatch pair only when var.cloudwatch is set).
  plain_text_bindings = {
    # Optional fields are left out rather than sent as null, so the edge's schema sees them as absent.
    # backend "cog" with runners = [] is a pull-only pool: runners lease work from the edge (their EDGE_URL).
    MODELS = jsonencode([for m in var.models : merge(
      { id = m.id, version = m.version, backend = m.backend, runners = m.runners },
      { for k, v in { tokenizer = m.tokenizer } : k => v if v != null },
      { for k, v in { limits = m.limits } : k => v if v != null },
    )])
    PUBLIC_BASE_URL           = local.public_base_url
    ALLOWED_ORIGINS           = join(",", var.allowed_origins)
    LOG_LEVEL                 = var.log_level
    LEASE_TTL_SECONDS         = tostring(var.lease_ttl_seconds)
    MAX_QUEUE_SECONDS         = tostring(var.max_queue_seconds)
    MAX_BACKLOG               = tostring(var.max_backlog)
    RUNNER_SILENCE_SECONDS    = tostring(var.runner_silence_seconds)
    MAX_REQUEUES              = tostring(var.max_requeues)
    RUNNER_REQUEST_TIMEOUT_MS = tostring(var.runner_request_timeout_ms)
    EMBEDDING_TTL_SECONDS     = tostring(var.embedding_ttl_seconds)
    # Client webhooks never go to private addresses in a deployment; names are checked through this DoH resolver.
    WEBHOOK_ALLOW_PRIVATE = "false"
    WEBHOOK_DNS_RESOLVER  = var.webhook_dns_resolver
    # The cron trigger pushes Backlog/Waiting/Running per model to CloudWatch only when these are bound.
    CLOUDWATCH_REGION    = try(var.cloudwatch.region, null)
    CLOUDWATCH_NAMESPACE = try(var.cloudwatch.namespace, null)
  }

  # Secrets land in the Terraform state; keep the state encrypted (see README). Null optional secrets are not bound.
  secret_text_bindings = {
    RUNNER_WEBHOOK_SECRET        = var.runner_webhook_secret
    RUNNER_TOKEN                 = var.runner_token
    PUSH_TARGET_TOKEN            = var.push_target_token
    TOKEN_SIGNING_SECRET         = var.token_signing_secret
    WEBHOOK_SIGNING_SECRET       = var.webhook_signing_secret
    OPERATOR_TOKEN               = var.operator_token
    STREAM_SIGNING_SECRET        = var.stream_signing_secret
    REPLICATE_API_TOKEN          = var.replicate_api_token
    REPLICATE_WEBHOOK_SECRET     = var.replicate_webhook_secret
    CLOUDWATCH_ACCESS_KEY_ID     = var.cloudwatch_access_key_id
    CLOUDWATCH_SECRET_ACCESS_KEY = var.cloudwatch_secret_access_key
  }

  bindings = concat(
    [for name, _ in local.kv_bindings : { name = name, type = "kv_namespace", namespace_id = cloudflare_workers_kv_namespace.this[name].id }],
    [for name, class in local.durable_object_bindings : { name = name, type = "durable_object_namespace", class_name = class }],
    [for name, text in local.plain_text_bindings : { name = name, type = "plain_text", text = text } if text != null],
    [for name, text in local.secret_text_bindings : { name = name, type = "secret_text", text = text } if text != null],
  )
}

# Every script of the account with its current Durable Object migration tag (the list wrangler reads before a deploy).
data "cloudflare_workers_scripts" "this" {
  account_id = var.account_id
}

resource "cloudflare_workers_kv_namespace" "this" {
  for_each = local.kv_bindings

  account_id = var.account_id
  title      = "${var.name}-${each.value}"
}

resource "cloudflare_workers_script" "this" {
  account_id  = var.account_id
  script_name = var.name

  content     = file(var.script_path)
  main_module = var.main_module

  compatibility_date  = var.compatibility_date
  compatibility_flags = var.compatibility_flags

  bindings = local.bindings

  # Only the steps after the deployed tag, checked against it with old_tag; null when there is nothing new.
  migrations = local.migrations

  observability = {
    enabled = var.observability_enabled
  }

  lifecycle {
    precondition {
      condition     = local.deployed_migration_tag == null || contains(local.migration_tags, local.deployed_migration_tag)
      error_message = "The deployed worker's Durable Object migration tag is not in local.durable_object_migrations; migrations are append-only, so restore the missing tag instead of replaying every step."
    }

    precondition {
      # Whether the key is set is not secret; the key is.
      condition     = var.cloudwatch == null || nonsensitive(var.cloudwatch_access_key_id != null && var.cloudwatch_secret_access_key != null)
      error_message = "cloudwatch is set, so cloudwatch_access_key_id and cloudwatch_secret_access_key are required (the key of the PutMetricData-only IAM user)."
    }
  }
}

# The every-minute tick: the edge publishes each model pool's backlog (CloudWatch, when configured) and expires leases.
resource "cloudflare_workers_cron_trigger" "this" {
  account_id  = var.account_id
  script_name = cloudflare_workers_script.this.script_name
  schedules   = [for cron in local.cron_schedules : { cron = cron }]
}

resource "cloudflare_workers_script_subdomain" "this" {
  account_id       = var.account_id
  script_name      = cloudflare_workers_script.this.script_name
  enabled          = var.enable_workers_dev
  previews_enabled = false
}

resource "cloudflare_workers_custom_domain" "this" {
  count = var.custom_domain != null ? 1 : 0

  account_id = var.account_id
  zone_id    = var.zone_id
  hostname   = var.custom_domain
  service    = cloudflare_workers_script.this.script_name

  lifecycle {
    precondition {
      condition     = var.zone_id != null
      error_message = "zone_id is required when custom_domain is set."
    }
  }
}

resource "cloudflare_workers_route" "this" {
  count = var.route_pattern != null ? 1 : 0

  zone_id = var.zone_id
  pattern = var.route_pattern
  script  = cloudflare_workers_script.this.script_name

  lifecycle {
    precondition {
      condition     = var.zone_id != null
      error_message = "zone_id is required when route_pattern is set."
    }
  }
}
