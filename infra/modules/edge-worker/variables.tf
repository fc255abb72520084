variable "account_id" {
  description = "Cloudflare account ID that owns the worker and its KV namespaces."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{32}$", var.account_id))
    error_message = "account_id must be a 32-character lowercase hex Cloudflare account ID."
  }
}

variable "name" {
  description = "Worker script name; also the prefix of the KV namespace titles."
  type        = string
  default     = "sd-edge"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{0,54}[a-z0-9]$", var.name))
    error_message = "name must be 2-56 characters of lowercase letters, digits and hyphens, not starting or ending with a hyphen."
  }
}

variable "script_path" {
  description = "Path to the bundled worker module (for example edge/dist/index.js from `npx wrangler deploy --dry-run --outdir dist`)."
  type        = string

  validation {
    condition     = can(regex("\\.(m?js)$", var.script_path))
    error_message = "script_path must point at a bundled .js or .mjs ES module."
  }
}

variable "main_module" {
  description = "Name of the uploaded ES module part that exports the fetch and scheduled handlers and the Durable Object classes."
  type        = string
  default     = "index.js"
}

variable "compatibility_date" {
  description = "Workers compatibility date; keep it equal to compatibility_date in edge/wrangler.jsonc."
  type        = string
  default     = "2026-04-20"

  validation {
    condition     = can(regex("^\\d{4}-\\d{2}-\\d{2}$", var.compatibility_date))
    error_message = "compatibility_date must be a YYYY-MM-DD date."
  }
}

variable "compatibility_flags" {
  description = "Workers compatibility flags; keep them equal to compatibility_flags in edge/wrangler.jsonc."
  type        = list(string)
  default     = ["nodejs_compat"]
}

variable "models" {
  description = "The configured models, serialised into the MODELS variable: id, version, backend (cog | replicate), runners (push targets: third-party Cog base URLs; [] for a pull-only pool whose runners lease work from the edge), the tokenizer id and optional limits."
  type = list(object({
    id        = string
    version   = string
    backend   = optional(string, "cog")
    runners   = list(string)
    tokenizer = optional(string)
    limits    = optional(map(number))
  }))

  validation {
    condition     = length(var.models) > 0
    error_message = "models must list at least one model."
  }

  validation {
    condition     = alltrue([for m in var.models : contains(["cog", "replicate"], m.backend)])
    error_message = "every model backend must be \"cog\" or \"replicate\"."
  }

  validation {
    condition     = alltrue([for m in var.models : alltrue([for r in m.runners : can(regex("^https?://[^/]+", r))])])
    error_message = "every models[].runners entry must be an http(s) base URL (an empty list is a pull-only pool)."
  }

  validation {
    condition     = length(distinct([for m in var.models : "${m.id}:${m.version}"])) == length(var.models)
    error_message = "models must not list the same id and version twice (each is one pool, one Model dimension)."
  }
}

variable "allowed_origins" {
  description = "Origins allowed by CORS (publishable keys add their own origins on top). Empty means none."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for o in var.allowed_origins : can(regex("^https?://[^/]+$", o))])
    error_message = "allowed_origins entries must be scheme://host[:port] with no path."
  }
}

variable "log_level" {
  description = "Edge log level."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["debug", "info", "warn", "error"], var.log_level)
    error_message = "log_level must be one of debug, info, warn, error."
  }
}

variable "public_base_url" {
  description = "Public URL of the edge (used for urls.get/stream and the runner webhook). Null derives it from custom_domain or the workers.dev subdomain."
  type        = string
  default     = null

  validation {
    condition     = var.public_base_url == null || can(regex("^https://[^/]+$", var.public_base_url))
    error_message = "public_base_url must be https://host with no trailing path."
  }
}

variable "workers_dev_subdomain" {
  description = "The account's workers.dev subdomain (the <sub> in <script>.<sub>.workers.dev); used to derive the public URL when no custom domain is set."
  type        = string
  default     = null
}

variable "enable_workers_dev" {
  description = "Serve the worker on its workers.dev URL as well."
  type        = bool
  default     = true
}

variable "zone_id" {
  description = "Cloudflare zone ID for custom_domain or route_pattern; required when either is set."
  type        = string
  default     = null
}

variable "custom_domain" {
  description = "Hostname to attach to the worker as a Workers custom domain (for example api.example.com). Null for none."
  type        = string
  default     = null
}

variable "route_pattern" {
  description = "Zone route pattern (for example example.com/v1/*) to run the worker on. Null for none."
  type        = string
  default     = null
}

variable "lease_ttl_seconds" {
  description = "LEASE_TTL_SECONDS: a pull runner's lease not heartbeated for this long goes back to the head of the line (the runner stops itself at 70% of it)."
  type        = number
  default     = 15

  validation {
    condition     = var.lease_ttl_seconds >= 2 && var.lease_ttl_seconds <= 600 && floor(var.lease_ttl_seconds) == var.lease_ttl_seconds
    error_message = "lease_ttl_seconds must be a whole number between 2 and 600."
  }
}

variable "max_queue_seconds" {
  description = "MAX_QUEUE_SECONDS: a prediction still waiting for a GPU after this long fails (cover the fleet's cold start from zero)."
  type        = number
  default     = 3600

  validation {
    condition     = var.max_queue_seconds >= 60 && var.max_queue_seconds <= 604800 && floor(var.max_queue_seconds) == var.max_queue_seconds
    error_message = "max_queue_seconds must be a whole number between 60 and 604800."
  }
}

variable "max_backlog" {
  description = "MAX_BACKLOG: most predictions waiting per model; past it, create answers 503 with Retry-After before storing anything."
  type        = number
  default     = 10000

  validation {
    condition     = var.max_backlog >= 1 && floor(var.max_backlog) == var.max_backlog
    error_message = "max_backlog must be a positive whole number."
  }
}

variable "cloudwatch" {
  description = "Where the every-minute cron trigger publishes the per-model backlog (CLOUDWATCH_REGION, CLOUDWATCH_NAMESPACE; metrics Backlog, Waiting, Running with dimension Model). Null publishes nothing (GET /metrics still answers)."
  type = object({
    region    = string
    namespace = optional(string, "SdEdge")
  })
  default = null

  validation {
    condition     = var.cloudwatch == null ? true : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.cloudwatch.region))
    error_message = "cloudwatch.region must be an AWS region such as us-east-1."
  }

  validation {
    condition     = var.cloudwatch == null ? true : can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.cloudwatch.namespace)) && !startswith(var.cloudwatch.namespace, "AWS/")
    error_message = "cloudwatch.namespace must be 1-255 characters of letters, digits and . _ / # : - and must not start with AWS/."
  }
}

variable "cloudwatch_access_key_id" {
  description = "CLOUDWATCH_ACCESS_KEY_ID: access key of an IAM identity allowed only cloudwatch:PutMetricData (the gpu-runner-fleet module creates one); required when cloudwatch is set."
  type        = string
  default     = null
  sensitive   = true
}

variable "cloudwatch_secret_access_key" {
  description = "CLOUDWATCH_SECRET_ACCESS_KEY matching cloudwatch_access_key_id."
  type        = string
  default     = null
  sensitive   = true
}

variable "operator_token" {
  description = "OPERATOR_TOKEN: bearer token of the operator routes (GET /metrics, the backlog per model in Prometheus text or ?format=json)."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.operator_token) >= 24
    error_message = "operator_token must be at least 24 characters."
  }
}

variable "runner_webhook_secret" {
  description = "RUNNER_WEBHOOK_SECRET: verifies runner webhooks; equals the runners' WEBHOOK_SIGNING_SECRET (whsec_...)."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^whsec_[A-Za-z0-9+/=]{24,}$", var.runner_webhook_secret))
    error_message = "runner_webhook_secret must be whsec_ followed by at least 24 base64 characters."
  }
}

variable "runner_token" {
  description = "RUNNER_TOKEN: the runners' bearer token on the lease API (their EDGE_RUNNER_TOKEN) and the token the edge sends to push targets."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.runner_token) >= 24
    error_message = "runner_token must be at least 24 characters."
  }
}

variable "token_signing_secret" {
  description = "TOKEN_SIGNING_SECRET: HMAC key of the short-lived tokens customers' backends mint for their users."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.token_signing_secret) >= 32
    error_message = "token_signing_secret must be at least 32 characters."
  }
}

variable "webhook_signing_secret" {
  description = "WEBHOOK_SIGNING_SECRET: signs client webhooks per Standard Webhooks (whsec_...)."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^whsec_[A-Za-z0-9+/=]{24,}$", var.webhook_signing_secret))
    error_message = "webhook_signing_secret must be whsec_ followed by at least 24 base64 characters."
  }
}

variable "observability_enabled" {
  description = "Turn on Workers Logs for the script."
  type        = bool
  default     = true
}

variable "stream_signing_secret" {
  description = "STREAM_SIGNING_SECRET: signs the capability token in urls.stream; null falls back to token_signing_secret."
  type        = string
  default     = null
  sensitive   = true
}

variable "replicate_api_token" {
  description = "REPLICATE_API_TOKEN for models with backend \"replicate\"; null when none."
  type        = string
  default     = null
  sensitive   = true
}

variable "push_target_token" {
  description = "PUSH_TARGET_TOKEN: the bearer the edge sends to the models' Cog push targets (their API_TOKEN); null sends none. Never the runner_token: a push target is a host you do not run, and runner_token leases every model's work."
  type        = string
  default     = null
  sensitive   = true
}

variable "replicate_webhook_secret" {
  description = "REPLICATE_WEBHOOK_SECRET verifying webhooks from a Replicate-compatible backend; null when none."
  type        = string
  default     = null
  sensitive   = true
}

variable "runner_silence_seconds" {
  description = "RUNNER_SILENCE_SECONDS: a dispatched or leased prediction whose runner reported nothing for this long goes back in line."
  type        = number
  default     = 120

  validation {
    condition     = var.runner_silence_seconds >= 10
    error_message = "runner_silence_seconds must be at least 10."
  }
}

variable "max_requeues" {
  description = "MAX_REQUEUES: how many times a silent runner's prediction is requeued before it fails."
  type        = number
  default     = 2

  validation {
    condition     = var.max_requeues >= 0 && var.max_requeues <= 10
    error_message = "max_requeues must be between 0 and 10."
  }
}

variable "runner_request_timeout_ms" {
  description = "RUNNER_REQUEST_TIMEOUT_MS: timeout of the edge's PUT to a runner."
  type        = number
  default     = 15000

  validation {
    condition     = var.runner_request_timeout_ms >= 1000
    error_message = "runner_request_timeout_ms must be at least 1000."
  }
}

variable "embedding_ttl_seconds" {
  description = "EMBEDDING_TTL_SECONDS: lifetime of cached CLIP embeddings in KV."
  type        = number
  default     = 2592000

  validation {
    condition     = var.embedding_ttl_seconds >= 60
    error_message = "embedding_ttl_seconds must be at least 60 (KV's minimum TTL)."
  }
}

variable "webhook_dns_resolver" {
  description = "WEBHOOK_DNS_RESOLVER: a DNS-over-HTTPS (JSON) endpoint through which client webhook host names are resolved and refused when any answer is a private address. Null: names are checked as written (a Worker's egress cannot reach private networks anyway)."
  type        = string
  default     = "https://cloudflare-dns.com/dns-query"

  validation {
    condition     = var.webhook_dns_resolver == null || can(regex("^https://", var.webhook_dns_resolver))
    error_message = "webhook_dns_resolver must be an https URL or null."
  }
}
