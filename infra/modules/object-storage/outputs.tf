output "bucket_name" {
  description = "Bucket name (the runners' S3_BUCKET)."
  value       = var.bucket_name
}

output "bucket_arn" {
  description = "ARN of the S3 bucket; null for R2."
  value       = try(aws_s3_bucket.this[0].arn, null)
}

output "s3_endpoint" {
  description = "S3_ENDPOINT for the runners: the R2 account endpoint, or null for AWS S3 (the SDK's regional default)."
  value       = local.r2_endpoint
}

output "s3_region" {
  description = "S3_REGION for the runners (\"auto\" on R2)."
  value       = local.is_r2 ? "auto" : var.aws_region
}

output "s3_force_path_style" {
  description = "S3_FORCE_PATH_STYLE for the runners."
  value       = local.is_r2
}

output "public_base_url" {
  description = "S3_PUBLIC_BASE_URL for the runners when public_read is on; null means outputs are presigned URLs."
  value = !var.public_read ? null : (
    local.is_s3 ? "https://${var.bucket_name}.s3.${var.aws_region}.amazonaws.com" : "https://${try(cloudflare_r2_managed_domain.this[0].domain, "")}"
  )
}

output "runner_iam_policy_json" {
  description = "IAM policy granting a runner read/write on predictions/ (S3 only): attach it to an instance role instead of using the access key."
  value       = try(data.aws_iam_policy_document.runner[0].json, null)
}

output "runner_access_key_id" {
  description = "AWS_ACCESS_KEY_ID for the runners on R2 (the bucket-scoped token's id); null on S3, where the instance role carries runner_iam_policy_json."
  value       = try(cloudflare_account_token.runner[0].id, null)
  sensitive   = true
}

output "runner_secret_access_key" {
  description = "AWS_SECRET_ACCESS_KEY matching runner_access_key_id (the SHA-256 of the R2 token value); null on S3."
  value       = try(sha256(cloudflare_account_token.runner[0].value), null)
  sensitive   = true
}
