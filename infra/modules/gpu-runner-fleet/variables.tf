variable "name" {
  description = "Name prefix of every resource of the fleet."
  type        = string
  default     = "sd-runner"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,20}[a-z0-9]$", var.name))
    error_message = "name must be 3-22 characters of lowercase letters, digits and hyphens (the ALB name limit is 32 with suffixes)."
  }
}

variable "image" {
  description = "Runner container image (built from infra's Dockerfile and pushed to a registry the instances can pull from, e.g. ECR)."
  type        = string

  validation {
    condition     = length(trimspace(var.image)) > 0 && !can(regex("\\s", var.image))
    error_message = "image must be a non-empty image reference without spaces."
  }
}

variable "vpc_id" {
  description = "VPC of the runners and the load balancer."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the runner instances (public subnets when endpoint_mode is \"instance\")."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must list at least one subnet."
  }
}

variable "alb_subnet_ids" {
  description = "Public subnets (two or more AZs) of the load balancer when endpoint_mode is \"alb\". Empty uses subnet_ids."
  type        = list(string)
  default     = []
}

variable "endpoint_mode" {
  description = "How the edge reaches runners: \"alb\" (one stable Cog endpoint, the load balancer) or \"instance\" (each instance public on port 5000)."
  type        = string
  default     = "alb"

  validation {
    condition     = contains(["alb", "instance"], var.endpoint_mode)
    error_message = "endpoint_mode must be \"alb\" or \"instance\"."
  }
}

variable "cloudflare_ip_ranges" {
  description = "CIDRs Cloudflare Workers connect from (https://www.cloudflare.com/ips/, or the cloudflare_ip_ranges data source); the only sources allowed in."
  type        = list(string)

  validation {
    condition     = length(var.cloudflare_ip_ranges) > 0 && alltrue([for c in var.cloudflare_ip_ranges : can(cidrhost(c, 0))])
    error_message = "cloudflare_ip_ranges must be a non-empty list of CIDR blocks."
  }

  validation {
    condition     = !contains(var.cloudflare_ip_ranges, "0.0.0.0/0") && !contains(var.cloudflare_ip_ranges, "::/0")
    error_message = "cloudflare_ip_ranges must not contain 0.0.0.0/0 or ::/0: the runners would be open to the internet."
  }
}

variable "alb_certificate_arn" {
  description = "ACM certificate for an HTTPS listener on the load balancer; null serves plain HTTP on port 80 (the runner token then crosses the internet in clear: use a certificate in production)."
  type        = string
  default     = null
}

variable "instance_type" {
  description = "GPU instance type (one runner, one GPU)."
  type        = string
  default     = "g5.xlarge"

  validation {
    condition     = can(regex("^(g[4-6][a-z]*|p[3-5][a-z]*|g6e)\\.[0-9a-z]+$", var.instance_type))
    error_message = "instance_type must be an NVIDIA GPU family (g4dn, g5, g6, g6e, p3, p4d, p5), for example g5.xlarge."
  }
}

variable "ami_id" {
  description = "AMI with the NVIDIA driver, Docker and the NVIDIA container toolkit. Null uses the latest AWS Deep Learning Base OSS Nvidia Driver GPU AMI (Amazon Linux 2023)."
  type        = string
  default     = null
}

variable "root_volume_size_gb" {
  description = "Root volume size; holds the image, the model and the docker layers."
  type        = number
  default     = 100

  validation {
    condition     = var.root_volume_size_gb >= 40
    error_message = "root_volume_size_gb must be at least 40."
  }
}

variable "min_size" {
  description = "Fewest runners. 0 lets the fleet sleep; the wake-up alarm starts one when jobs wait."
  type        = number
  default     = 0

  validation {
    condition     = var.min_size >= 0
    error_message = "min_size must be 0 or more."
  }
}

variable "max_size" {
  description = "Most runners (one in-flight prediction each)."
  type        = number
  default     = 4

  validation {
    condition     = var.max_size >= 1
    error_message = "max_size must be at least 1."
  }
}

variable "desired_capacity" {
  description = "Initial number of runners; null leaves it to the scaling policies."
  type        = number
  default     = null
}

variable "model_s3_uri" {
  description = "s3://bucket/prefix of a diffusers ONNX export to sync at boot and mount as MODEL_DIR. Null runs the embedded default model."
  type        = string
  default     = null

  validation {
    condition     = var.model_s3_uri == null || can(regex("^s3://[a-z0-9][a-z0-9.-]+[a-z0-9](/.*)?$", var.model_s3_uri))
    error_message = "model_s3_uri must look like s3://bucket/prefix."
  }
}

variable "ort_providers" {
  description = "ORT_PROVIDERS: onnxruntime execution providers in order of preference."
  type        = string
  default     = "cuda,cpu"

  validation {
    condition     = contains(["cpu", "cuda,cpu", "tensorrt,cuda,cpu"], var.ort_providers)
    error_message = "ort_providers must be one of cpu, cuda,cpu, tensorrt,cuda,cpu."
  }
}

variable "ort_intra_op_threads" {
  description = "ORT_INTRA_OP_THREADS; null keeps onnxruntime's default. On GPU a small number (2-4) is enough: the CPU only feeds the device."
  type        = number
  default     = null
}

variable "ort_inter_op_threads" {
  description = "ORT_INTER_OP_THREADS; null keeps onnxruntime's default."
  type        = number
  default     = null
}

variable "log_level" {
  description = "Runner LOG_LEVEL."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["trace", "debug", "info", "warn", "error", "fatal"], var.log_level)
    error_message = "log_level must be one of trace, debug, info, warn, error, fatal."
  }
}

variable "s3_bucket" {
  description = "S3_BUCKET the runners upload images to."
  type        = string
}

variable "s3_region" {
  description = "S3_REGION (\"auto\" for R2)."
  type        = string
}

variable "s3_endpoint" {
  description = "S3_ENDPOINT; null for AWS S3."
  type        = string
  default     = null
}

variable "s3_force_path_style" {
  description = "S3_FORCE_PATH_STYLE (true for R2 and most non-AWS stores)."
  type        = bool
  default     = false
}

variable "s3_public_base_url" {
  description = "S3_PUBLIC_BASE_URL when the bucket serves predictions/ publicly; null makes runners return presigned GET URLs."
  type        = string
  default     = null
}

variable "s3_iam_policy_json" {
  description = "IAM policy for the bucket attached to the instance role (AWS S3); null when credentials come from s3_access_key_id instead."
  type        = string
  default     = null
}

variable "s3_access_key_id" {
  description = "AWS_ACCESS_KEY_ID for the store (R2 or another non-AWS store); null uses the instance role."
  type        = string
  default     = null
  sensitive   = true
}

variable "s3_secret_access_key" {
  description = "AWS_SECRET_ACCESS_KEY matching s3_access_key_id."
  type        = string
  default     = null
  sensitive   = true
}

variable "api_token" {
  description = "API_TOKEN: bearer token every Cog route but /health-check requires; equals the edge's RUNNER_TOKEN."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.api_token) >= 24
    error_message = "api_token must be at least 24 characters."
  }
}

variable "webhook_signing_secret" {
  description = "WEBHOOK_SIGNING_SECRET (whsec_...): signs webhooks to the edge; equals the edge's RUNNER_WEBHOOK_SECRET."
  type        = string
  sensitive   = true

  validation {
    condition     = can(regex("^whsec_[A-Za-z0-9+/=]{24,}$", var.webhook_signing_secret))
    error_message = "webhook_signing_secret must be whsec_ followed by at least 24 base64 characters."
  }
}

variable "extra_environment" {
  description = "Extra runner environment variables (non-secret), for example PROGRESS_THROTTLE_MS or S3_PRESIGN_EXPIRES_SECONDS."
  type        = map(string)
  default     = {}
}

variable "scaling" {
  description = "Queue-depth scaling: the CloudWatch metric (namespace, name, QueueName dimension) counting predictions waiting or running, and the target per runner."
  type = object({
    metric_namespace           = optional(string, "SdEdge")
    metric_name                = optional(string, "PredictionsInSystem")
    queue_name                 = string
    target_per_instance        = optional(number, 1)
    scale_in_drain_seconds     = optional(number, 600)
    instance_warmup_seconds    = optional(number, 300)
  })

  validation {
    condition     = var.scaling.target_per_instance > 0
    error_message = "scaling.target_per_instance must be greater than 0."
  }

  validation {
    condition     = var.scaling.scale_in_drain_seconds >= 30 && var.scaling.scale_in_drain_seconds <= 7200
    error_message = "scaling.scale_in_drain_seconds must be between 30 and 7200."
  }
}

variable "tags" {
  description = "Tags for every resource of the fleet."
  type        = map(string)
  default     = {}
}
