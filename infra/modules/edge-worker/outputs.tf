output "script_name" {
  description = "Name of the deployed worker script."
  value       = cloudflare_workers_script.this.script_name
}

output "url" {
  description = "Public base URL of the edge API (also its PUBLIC_BASE_URL); the widget is served at <url>/embed.js."
  value       = local.public_base_url
}

output "kv_namespace_ids" {
  description = "KV namespace ID per binding name (KEYS, EMBEDDINGS, TOKENIZERS); use them with `wrangler kv` and `npm run keys`."
  value       = { for name, ns in cloudflare_workers_kv_namespace.this : name => ns.id }
}

output "queue_id" {
  description = "ID of the job queue."
  value       = cloudflare_queue.jobs.id
}

output "queue_name" {
  description = "Name of the job queue; the backlog metric that scales the GPU fleet is reported per this name."
  value       = cloudflare_queue.jobs.queue_name
}

output "dead_letter_queue_name" {
  description = "Name of the dead-letter queue that receives jobs past their retry budget."
  value       = cloudflare_queue.dead_letter.queue_name
}

output "models_json" {
  description = "The MODELS value the worker was deployed with."
  value       = local.plain_text_bindings.MODELS
}
