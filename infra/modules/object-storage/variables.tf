variable "backend" {
  description = "Where images are stored: \"s3\" (an AWS S3 bucket; runners get its IAM policy on their instance role) or \"r2\" (a Cloudflare R2 bucket, bucket-scoped account token)."
  type        = string
  default     = "s3"

  validation {
    condition     = contains(["s3", "r2"], var.backend)
    error_message = "backend must be \"s3\" or \"r2\"."
  }
}

variable "bucket_name" {
  description = "Bucket name (globally unique on S3)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name))
    error_message = "bucket_name must be 3-63 characters of lowercase letters, digits, dots and hyphens."
  }
}

variable "aws_region" {
  description = "AWS region of the S3 bucket (backend = \"s3\"); it is also the S3_REGION the runners use."
  type        = string
  default     = "us-east-1"
}

variable "cloudflare_account_id" {
  description = "Cloudflare account ID that owns the R2 bucket (backend = \"r2\")."
  type        = string
  default     = null

  validation {
    condition     = var.cloudflare_account_id == null || can(regex("^[0-9a-f]{32}$", var.cloudflare_account_id))
    error_message = "cloudflare_account_id must be a 32-character lowercase hex Cloudflare account ID."
  }
}

variable "r2_location" {
  description = "R2 location hint (wnam, enam, weur, eeur, apac, oc); null lets Cloudflare choose."
  type        = string
  default     = null

  validation {
    condition     = var.r2_location == null || contains(["wnam", "enam", "weur", "eeur", "apac", "oc"], coalesce(var.r2_location, "wnam"))
    error_message = "r2_location must be one of wnam, enam, weur, eeur, apac, oc."
  }
}

variable "predictions_prefix" {
  description = "Key prefix under which runners write prediction images (one sub-prefix per prediction)."
  type        = string
  default     = "predictions/"

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]+/$", var.predictions_prefix))
    error_message = "predictions_prefix must be one path segment ending in a slash, for example predictions/."
  }
}

variable "predictions_expiry_days" {
  description = "Days after which objects under predictions_prefix are deleted. Presigned output URLs never outlive this."
  type        = number
  default     = 7

  validation {
    condition     = var.predictions_expiry_days >= 1 && var.predictions_expiry_days <= 3650 && floor(var.predictions_expiry_days) == var.predictions_expiry_days
    error_message = "predictions_expiry_days must be a whole number between 1 and 3650."
  }
}

variable "public_read" {
  description = "Make objects under predictions_prefix publicly readable (then set the runners' S3_PUBLIC_BASE_URL). Off by default: outputs are presigned URLs."
  type        = bool
  default     = false
}

variable "cors_allowed_origins" {
  description = "Origins allowed to GET images cross-origin (for example the pages embedding the widget). [\"*\"] allows any."
  type        = list(string)
  default     = ["*"]
}

variable "force_destroy" {
  description = "Allow destroying the S3 bucket while it still holds objects."
  type        = bool
  default     = false
}

variable "runner_credentials_name" {
  description = "Name of the R2 account token whose keys the runners use (r2 only). Null uses <bucket_name>-runner."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the AWS resources."
  type        = map(string)
  default     = {}
}
