# The edge worker on Cloudflare: the script with every binding of edge/wrangler.jsonc, its KV namespaces,
# the job queue with its dead-letter queue and consumer, and optional custom domain / route.

locals {
  # Binding name => KV namespace title suffix. Mirrors kv_namespaces in edge/wrangler.jsonc (test/infra.test.ts checks).
  kv_bindings = {
    KEYS       = "keys"
    EMBEDDINGS = "embeddings"
    TOKENIZERS = "tokenizers"
  }

  # Binding name => Durable Object class exported by edge/src/index.ts.
  durable_object_bindings = {
    PREDICTIONS      = "PredictionObject"
    KEY_LIMITER      = "KeyLimiter"
    PREDICTION_INDEX = "PredictionIndex"
  }

  # Durable Object migrations, in order, as in the migrations list of edge/wrangler.jsonc.
  durable_object_migrations = [
    { tag = "v1", new_sqlite_classes = ["PredictionObject", "KeyLimiter"] },
    { tag = "v2", new_sqlite_classes = ["PredictionIndex"] },
  ]

  queue_name             = "${var.name}-jobs"
  dead_letter_queue_name = "${var.name}-jobs-dlq"

  # Binding name => queue the worker produces to.
  queue_producer_bindings = {
    JOBS = local.queue_name
  }

  public_base_url = coalesce(
    var.public_base_url,
    var.custom_domain != null ? "https://${var.custom_domain}" : null,
    var.workers_dev_subdomain != null ? "https://${var.name}.${var.workers_dev_subdomain}.workers.dev" : null,
    "https://${var.name}.workers.dev",
  )

  plain_text_bindings = {
    # Optional fields are left out rather than sent as null, so the edge's schema sees them as absent.
    MODELS = jsonencode([for m in var.models : merge(
      { id = m.id, version = m.version, backend = m.backend, runners = m.runners },
      { for k, v in { tokenizer = m.tokenizer } : k => v if v != null },
      { for k, v in { limits = m.limits } : k => v if v != null },
    )])
    PUBLIC_BASE_URL = local.public_base_url
    ALLOWED_ORIGINS = join(",", var.allowed_origins)
    LOG_LEVEL       = var.log_level
    # Must equal the consumer's max_retries, so it is derived from it.
    DISPATCH_MAX_RETRIES      = tostring(var.queue_consumer.max_retries)
    RUNNER_SILENCE_SECONDS    = tostring(var.runner_silence_seconds)
    MAX_REQUEUES              = tostring(var.max_requeues)
    RUNNER_REQUEST_TIMEOUT_MS = tostring(var.runner_request_timeout_ms)
    EMBEDDING_TTL_SECONDS     = tostring(var.embedding_ttl_seconds)
  }

  # Secrets land in the Terraform state; keep the state encrypted (see README). Null optional secrets are not bound.
  secret_text_bindings = {
    RUNNER_WEBHOOK_SECRET    = var.runner_webhook_secret
    RUNNER_TOKEN             = var.runner_token
    TOKEN_SIGNING_SECRET     = var.token_signing_secret
    WEBHOOK_SIGNING_SECRET   = var.webhook_signing_secret
    STREAM_SIGNING_SECRET    = var.stream_signing_secret
    REPLICATE_API_TOKEN      = var.replicate_api_token
    REPLICATE_WEBHOOK_SECRET = var.replicate_webhook_secret
  }

  bindings = concat(
    [for name, _ in local.kv_bindings : { name = name, type = "kv_namespace", namespace_id = cloudflare_workers_kv_namespace.this[name].id }],
    [for name, class in local.durable_object_bindings : { name = name, type = "durable_object_namespace", class_name = class }],
    [for name, queue in local.queue_producer_bindings : { name = name, type = "queue", queue_name = queue }],
    [for name, text in local.plain_text_bindings : { name = name, type = "plain_text", text = text }],
    [for name, text in local.secret_text_bindings : { name = name, type = "secret_text", text = text } if text != null],
  )
}

resource "cloudflare_workers_kv_namespace" "this" {
  for_each = local.kv_bindings

  account_id = var.account_id
  title      = "${var.name}-${each.value}"
}

resource "cloudflare_queue" "jobs" {
  account_id = var.account_id
  queue_name = local.queue_name
}

resource "cloudflare_queue" "dead_letter" {
  account_id = var.account_id
  queue_name = local.dead_letter_queue_name
}

resource "cloudflare_workers_script" "this" {
  account_id  = var.account_id
  script_name = var.name

  content     = file(var.script_path)
  main_module = var.main_module

  compatibility_date  = var.compatibility_date
  compatibility_flags = var.compatibility_flags

  bindings = local.bindings

  migrations = {
    new_tag = local.durable_object_migrations[length(local.durable_object_migrations) - 1].tag
    steps   = [for m in local.durable_object_migrations : { new_sqlite_classes = m.new_sqlite_classes }]
  }

  observability = {
    enabled = var.observability_enabled
  }

  # The producer binding needs the queue to exist before the upload.
  depends_on = [cloudflare_queue.jobs]
}

# The job queue's consumer: one prediction per batch, backoff between retries, then the dead-letter queue.
resource "cloudflare_queue_consumer" "jobs" {
  account_id        = var.account_id
  queue_id          = cloudflare_queue.jobs.id
  script_name       = cloudflare_workers_script.this.script_name
  type              = "worker"
  dead_letter_queue = cloudflare_queue.dead_letter.queue_name

  settings = {
    batch_size       = var.queue_consumer.batch_size
    max_retries      = var.queue_consumer.max_retries
    max_wait_time_ms = var.queue_consumer.max_wait_time_ms
    retry_delay      = var.queue_consumer.retry_delay
    max_concurrency  = var.queue_consumer.max_concurrency
  }
}

# The dead-letter queue is consumed by the same worker: it fails the prediction with a clear error.
resource "cloudflare_queue_consumer" "dead_letter" {
  account_id  = var.account_id
  queue_id    = cloudflare_queue.dead_letter.id
  script_name = cloudflare_workers_script.this.script_name
  type        = "worker"

  settings = {
    batch_size       = 10
    max_wait_time_ms = 1000
  }
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
