output "edge_url" {
  description = "Public URL of the API (the runners' EDGE_URL); the widget is at <edge_url>/embed.js."
  value       = module.edge.url
}

output "kv_namespace_ids" {
  description = "KV namespace IDs of the edge: KEYS for `npm run keys -- --namespace-id`, TOKENIZERS for `npm run tokenizer:upload -- --namespace-id`, EMBEDDINGS."
  value       = module.edge.kv_namespace_ids
}

output "model" {
  description = "The model pool, \"owner/name:version\": the runners' EDGE_MODEL, the Model dimension of Backlog, and the version to request."
  value       = local.model
}

output "tokenizer" {
  description = "Name the model's tokenizer must be uploaded under (its MODELS tokenizer)."
  value       = local.model_version
}

output "bucket" {
  description = "The image bucket and how runners reach it."
  value = {
    name     = module.storage.bucket_name
    endpoint = module.storage.s3_endpoint
    region   = module.storage.s3_region
  }
}

output "runner_pool" {
  description = "How runners reach work: pull mode, no inbound endpoint; the autoscaling group and its SSM environment path."
  value = {
    mode                = "pull"
    autoscaling_group   = module.runners.autoscaling_group_name
    runner_env_ssm_path = module.runners.runner_env_ssm_path
  }
}

output "scaling_metric" {
  description = "The CloudWatch metric the edge's cron trigger publishes and the fleet's alarms read."
  value       = module.runners.scaling_metric
}

output "scaling_alarms" {
  description = "Names of the wake, shrink and idle alarms (aws cloudwatch describe-alarms --alarm-names ...)."
  value       = module.runners.alarm_names
}

output "operator_token" {
  description = "OPERATOR_TOKEN: bearer token of GET <edge_url>/metrics (terraform output -raw operator_token)."
  value       = random_password.operator_token.result
  sensitive   = true
}

output "cloudflare_account_id" {
  description = "Cloudflare account of the deployment (CLOUDFLARE_ACCOUNT_ID for wrangler kv with --namespace-id)."
  value       = var.cloudflare_account_id
}
