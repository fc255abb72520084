variable "name" {
  description = "Name of the autoscaling group and prefix of every other resource of the fleet (SSM path /<name>/runner-env/, IAM user <name>-metrics-publisher)."
  type        = string
  default     = "sd-runner"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lowercase letters, digits and hyphens, not starting or ending with a hyphen."
  }
}

variable "image" {
  description = "Runner container image (built from gpu-runner/Dockerfile and pushed to a registry the instances can pull from, e.g. ECR)."
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
  description = "Subnets of the runner instances. They need a route out (a NAT gateway, or public subnets with assign_public_ip = true); nothing needs a route in."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids must list at least one subnet."
  }
}

variable "assign_public_ip" {
  description = "Give each instance a public IPv4 address, for public subnets without a NAT gateway. Egress only either way: the security group has no inbound rule."
  type        = bool
  default     = false
}

variable "extra_egress" {
  description = "Outbound rules beyond HTTPS to anywhere, for example an S3 endpoint or a registry on another port."
  type = list(object({
    description = string
    protocol    = string
    port        = number
    cidr        = string
  }))
  default = []

  validation {
    condition     = alltrue([for r in var.extra_egress : can(cidrhost(r.cidr, 0)) && contains(["tcp", "udp"], r.protocol)])
    error_message = "extra_egress entries need a tcp or udp protocol and an IPv4 CIDR."
  }
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
  description = "Fewest runners. 0 (default) lets the fleet sleep: the wake alarm starts one when the edge reports a backlog."
  type        = number
  default     = 0

  validation {
    condition     = var.min_size >= 0 && floor(var.min_size) == var.min_size
    error_message = "min_size must be a whole number, 0 or more."
  }
}

variable "max_size" {
  description = "Most runners (each holds SLOTS leases)."
  type        = number
  default     = 4

  validation {
    condition     = var.max_size >= 1 && floor(var.max_size) == var.max_size
    error_message = "max_size must be a whole number, at least 1."
  }
}

variable "health_check_grace_period_seconds" {
  description = "Seconds a new instance has before GET /ready must answer 200 (and before it counts for scaling). It covers the boot, pulling the CUDA runner image (several GB), syncing model_s3_uri and creating the onnxruntime CUDA sessions, which together take 5-15 minutes on a g5; too short and the group kills runners that are still loading."
  type        = number
  default     = 900

  validation {
    condition     = var.health_check_grace_period_seconds >= 600 && var.health_check_grace_period_seconds <= 7200
    error_message = "health_check_grace_period_seconds must be between 600 and 7200: less does not cover an image pull plus a model load."
  }
}

variable "unready_checks_before_replace" {
  description = "After the grace period, consecutive failed GET /ready checks (15 s apart) before the instance marks itself Unhealthy and the group replaces it."
  type        = number
  default     = 8

  validation {
    condition     = var.unready_checks_before_replace >= 2 && var.unready_checks_before_replace <= 240
    error_message = "unready_checks_before_replace must be between 2 and 240."
  }
}

variable "edge_url" {
  description = "EDGE_URL: the edge's public base URL, where runners lease work (outbound HTTPS)."
  type        = string

  validation {
    condition     = can(regex("^https://[^/]+$", var.edge_url))
    error_message = "edge_url must be https://host with no path."
  }
}

variable "edge_runner_token" {
  description = "EDGE_RUNNER_TOKEN: the runners' bearer token on the edge's lease API; equals the edge's RUNNER_TOKEN secret. Stored as an SSM SecureString."
  type        = string
  sensitive   = true

  validation {
    condition     = length(var.edge_runner_token) >= 24
    error_message = "edge_runner_token must be at least 24 characters."
  }
}

variable "model" {
  description = "EDGE_MODEL: the model pool the runners serve, \"owner/name:version\" (an entry of the edge's MODELS); also the Model dimension of the Backlog metric the fleet scales on."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+/[A-Za-z0-9._-]+:[A-Za-z0-9._-]+$", var.model))
    error_message = "model must look like owner/name:version."
  }
}

variable "slots" {
  description = "SLOTS: leases a runner holds at once. One per GPU is the norm: a second prediction on the same GPU only queues behind the first."
  type        = number
  default     = 1

  validation {
    condition     = var.slots >= 1 && var.slots <= 16 && floor(var.slots) == var.slots
    error_message = "slots must be a whole number between 1 and 16."
  }
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
  description = "ORT_PROVIDERS: onnxruntime execution providers in order of preference. The image carries the CUDA 12 + cuDNN 9 runtime, not TensorRT, so tensorrt is refused."
  type        = string
  default     = "cuda,cpu"

  validation {
    condition     = contains(["cpu", "cuda,cpu"], var.ort_providers)
    error_message = "ort_providers must be cuda,cpu or cpu; the runner image has no TensorRT runtime, so tensorrt cannot be offered."
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

variable "use_s3_access_keys" {
  description = "Give the runners static S3 keys (s3_access_key_id / s3_secret_access_key, e.g. R2's bucket-scoped token) as SSM SecureStrings. False on AWS S3, where the instance role carries s3_iam_policy_json."
  type        = bool
  default     = false
}

variable "s3_access_key_id" {
  description = "AWS_ACCESS_KEY_ID for the store (R2 or another non-AWS store); used only with use_s3_access_keys = true; null otherwise (on AWS S3 the instance role carries s3_iam_policy_json)."
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

variable "extra_environment" {
  description = "Extra runner environment variables (non-secret), for example PROGRESS_THROTTLE_MS or S3_PRESIGN_EXPIRES_SECONDS."
  type        = map(string)
  default     = {}
}

variable "scaling" {
  description = "Scaling on the edge's CloudWatch Backlog metric (namespace = the edge's CLOUDWATCH_NAMESPACE, dimension Model): the target backlog per in-service runner, minutes of surplus before removing a runner, minutes of empty backlog before sleeping at min_size, and how long a runner picked for scale-in may drain."
  type = object({
    metric_namespace            = optional(string, "SdEdge")
    target_backlog_per_instance = optional(number, 1)
    scale_in_minutes            = optional(number, 5)
    idle_minutes                = optional(number, 15)
    scale_in_drain_seconds      = optional(number, 600)
  })
  default = {}

  validation {
    condition     = var.scaling.target_backlog_per_instance > 0
    error_message = "scaling.target_backlog_per_instance must be greater than 0."
  }

  validation {
    condition     = var.scaling.idle_minutes >= 1 && var.scaling.idle_minutes <= 1440 && var.scaling.scale_in_minutes >= 1 && var.scaling.scale_in_minutes <= 1440
    error_message = "scaling.idle_minutes and scaling.scale_in_minutes must be between 1 and 1440 (one-minute alarm periods)."
  }

  validation {
    condition     = var.scaling.scale_in_drain_seconds >= 30 && var.scaling.scale_in_drain_seconds <= 7000
    error_message = "scaling.scale_in_drain_seconds must be between 30 and 7000 (the drain hook's timeout is 60 s longer, at most 7200)."
  }
}

variable "tags" {
  description = "Tags for every resource of the fleet."
  type        = map(string)
  default     = {}
}
