# S3-compatible storage for generated images: an AWS S3 bucket or a Cloudflare R2 bucket, with expiry of
# predictions/, public access off by default, CORS for GET, and access scoped to this bucket for the runners (an IAM
# policy for the instance role on S3, a bucket-scoped token on R2).

locals {
  is_s3                   = var.backend == "s3"
  is_r2                   = var.backend == "r2"
  runner_credentials_name = coalesce(var.runner_credentials_name, "${var.bucket_name}-runner")
  r2_endpoint             = local.is_r2 ? "https://${var.cloudflare_account_id}.r2.cloudflarestorage.com" : null
}

################################################################################
# AWS S3
################################################################################

resource "aws_s3_bucket" "this" {
  count = local.is_s3 ? 1 : 0

  bucket        = var.bucket_name
  force_destroy = var.force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_ownership_controls" "this" {
  count = local.is_s3 ? 1 : 0

  bucket = aws_s3_bucket.this[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "this" {
  count = local.is_s3 ? 1 : 0

  bucket                  = aws_s3_bucket.this[0].id
  block_public_acls       = true
  ignore_public_acls      = true
  block_public_policy     = !var.public_read
  restrict_public_buckets = !var.public_read
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  count = local.is_s3 ? 1 : 0

  bucket = aws_s3_bucket.this[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  count = local.is_s3 ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  rule {
    id     = "expire-predictions"
    status = "Enabled"

    filter {
      prefix = var.predictions_prefix
    }

    expiration {
      days = var.predictions_expiry_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

resource "aws_s3_bucket_cors_configuration" "this" {
  count = local.is_s3 ? 1 : 0

  bucket = aws_s3_bucket.this[0].id

  cors_rule {
    allowed_methods = ["GET", "HEAD"]
    allowed_origins = var.cors_allowed_origins
    allowed_headers = ["*"]
    expose_headers  = ["ETag", "Content-Length", "Content-Type"]
    max_age_seconds = 3600
  }
}

# Public read of predictions/ only, and only when asked for.
resource "aws_s3_bucket_policy" "public_read" {
  count = local.is_s3 && var.public_read ? 1 : 0

  bucket = aws_s3_bucket.this[0].id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "PublicReadPredictions"
      Effect    = "Allow"
      Principal = "*"
      Action    = "s3:GetObject"
      Resource  = "${aws_s3_bucket.this[0].arn}/${var.predictions_prefix}*"
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# What a runner may do: write, read and delete its outputs, nothing else (no listing other buckets). Delete because a
# prediction whose upload failed or timed out removes what it wrote (an upload the runner gave up on can still land).
# The fleet attaches it to its instance role: no long-lived key on AWS.
data "aws_iam_policy_document" "runner" {
  count = local.is_s3 ? 1 : 0

  statement {
    sid       = "ReadWritePredictions"
    actions   = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${aws_s3_bucket.this[0].arn}/${var.predictions_prefix}*"]
  }

  statement {
    sid       = "ListPredictions"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.this[0].arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.predictions_prefix}*"]
    }
  }
}

################################################################################
# Cloudflare R2
################################################################################

resource "cloudflare_r2_bucket" "this" {
  count = local.is_r2 ? 1 : 0

  account_id = var.cloudflare_account_id
  name       = var.bucket_name
  location   = var.r2_location

  lifecycle {
    precondition {
      condition     = var.cloudflare_account_id != null
      error_message = "cloudflare_account_id is required when backend is \"r2\"."
    }
  }
}

resource "cloudflare_r2_bucket_lifecycle" "this" {
  count = local.is_r2 ? 1 : 0

  account_id  = var.cloudflare_account_id
  bucket_name = cloudflare_r2_bucket.this[0].name

  rules = [{
    id         = "expire-predictions"
    enabled    = true
    conditions = { prefix = var.predictions_prefix }
    delete_objects_transition = {
      condition = { type = "Age", max_age = var.predictions_expiry_days * 86400 }
    }
    abort_multipart_uploads_transition = {
      condition = { type = "Age", max_age = 86400 }
    }
  }]
}

resource "cloudflare_r2_bucket_cors" "this" {
  count = local.is_r2 ? 1 : 0

  account_id  = var.cloudflare_account_id
  bucket_name = cloudflare_r2_bucket.this[0].name

  rules = [{
    id              = "get-images"
    allowed         = { methods = ["GET", "HEAD"], origins = var.cors_allowed_origins, headers = ["*"] }
    expose_headers  = ["ETag", "Content-Length", "Content-Type"]
    max_age_seconds = 3600
  }]
}

# R2's public r2.dev URL, only when public_read is asked for.
resource "cloudflare_r2_managed_domain" "this" {
  count = local.is_r2 && var.public_read ? 1 : 0

  account_id  = var.cloudflare_account_id
  bucket_name = cloudflare_r2_bucket.this[0].name
  enabled     = true
}

data "cloudflare_account_api_token_permission_groups_list" "r2_item_write" {
  count = local.is_r2 ? 1 : 0

  account_id = var.cloudflare_account_id
  name       = "Workers%20R2%20Storage%20Bucket%20Item%20Write"
}

# A token scoped to this bucket's objects. As S3 credentials: access key id = token id,
# secret access key = SHA-256 of the token value (Cloudflare's documented derivation).
resource "cloudflare_account_token" "runner" {
  count = local.is_r2 ? 1 : 0

  account_id = var.cloudflare_account_id
  name       = local.runner_credentials_name

  policies = [{
    effect            = "allow"
    permission_groups = [{ id = one(data.cloudflare_account_api_token_permission_groups_list.r2_item_write[0].result).id }]
    resources = jsonencode({
      "com.cloudflare.edge.r2.bucket.${var.cloudflare_account_id}_default_${cloudflare_r2_bucket.this[0].name}" = "*"
    })
  }]
}
