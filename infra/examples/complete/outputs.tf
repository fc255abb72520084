output "edge_url" {
  description = "Public URL of the API; the widget is at <edge_url>/embed.js."
  value       = module.edge.url
}

output "kv_namespace_ids" {
  description = "KV namespace IDs of the edge (KEYS for `npm run keys`, EMBEDDINGS, TOKENIZERS)."
  value       = module.edge.kv_namespace_ids
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
  description = "The Cog endpoints the edge dispatches to (its MODELS runners)."
  value       = module.runners.runner_pool
}

output "runner_autoscaling_group" {
  description = "Autoscaling group of the GPU runners."
  value       = module.runners.autoscaling_group_name
}

output "scaling_metric" {
  description = "The CloudWatch metric that must be published for queue-depth scaling."
  value       = module.runners.scaling_metric
}
