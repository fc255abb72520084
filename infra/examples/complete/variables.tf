variable "name" {
  description = "Name prefix of the deployment (worker script, KV titles, fleet, metrics publisher)."
  type        = string
  default     = "sd"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.name))
    error_message = "name must be 2-16 characters: a lowercase letter, then lowercase letters, digits or hyphens."
  }
}

variable "cloudflare_account_id" {
  description = "Cloudflare account for the worker and KV (and the bucket when storage_backend is r2)."
  type        = string
}

variable "workers_dev_subdomain" {
  description = "The account's workers.dev subdomain, used for the edge URL when custom_domain is null."
  type        = string
  default     = null
}

variable "zone_id" {
  description = "Cloudflare zone of custom_domain."
  type        = string
  default     = null
}

variable "custom_domain" {
  description = "Hostname for the edge API, for example api.example.com; null serves it on workers.dev."
  type        = string
  default     = null
}

variable "worker_script_path" {
  description = "Bundled worker, from `cd edge && npx wrangler deploy --dry-run --outdir dist`."
  type        = string
  default     = "../../../edge/dist/index.js"
}

variable "aws_region" {
  description = "AWS region of the GPU fleet (and of the bucket when storage_backend is s3)."
  type        = string
  default     = "us-east-1"
}

variable "storage_backend" {
  description = "Image storage: s3 or r2."
  type        = string
  default     = "s3"

  validation {
    condition     = contains(["s3", "r2"], var.storage_backend)
    error_message = "storage_backend must be \"s3\" or \"r2\"."
  }
}

variable "bucket_name" {
  description = "Name of the image bucket."
  type        = string
}

variable "allowed_origins" {
  description = "Origins allowed by CORS on the edge and on the bucket (the pages that embed the widget)."
  type        = list(string)
  default     = []
}

variable "runner_image" {
  description = "Runner container image (e.g. <account>.dkr.ecr.<region>.amazonaws.com/sd-runner:<tag>)."
  type        = string
}

variable "model_s3_uri" {
  description = "s3:// URI of a diffusers ONNX export for the runners; null runs the embedded default model."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC of the GPU fleet."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the GPU instances; they need a route out (NAT, or public with runner_public_ip)."
  type        = list(string)
}

variable "runner_public_ip" {
  description = "Give runners public IPs (public subnets without NAT). They accept no inbound traffic either way."
  type        = bool
  default     = false
}

variable "instance_type" {
  description = "GPU instance type of the runners."
  type        = string
  default     = "g5.xlarge"
}

variable "min_runners" {
  description = "Fewest GPU runners (0 lets the fleet sleep)."
  type        = number
  default     = 0
}

variable "max_runners" {
  description = "Most GPU runners."
  type        = number
  default     = 4
}

variable "metric_namespace" {
  description = "CloudWatch namespace the edge publishes Backlog into and the fleet's alarms read."
  type        = string
  default     = "SdEdge"
}

variable "idle_minutes" {
  description = "Minutes of empty backlog before the runners scale to zero."
  type        = number
  default     = 15
}
