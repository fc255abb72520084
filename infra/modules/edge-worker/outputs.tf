output "script_name" {
  description = "Name of the deployed worker script."
  value       = cloudflare_workers_script.this.script_name
}

output "url" {
  description = "Public base URL of the edge API (also its PUBLIC_BASE_URL and the runners' EDGE_URL); the widget is served at <url>/embed.js."
  value       = local.public_base_url
}

output "kv_namespace_ids" {
  description = "KV namespace ID per binding name (KEYS, EMBEDDINGS, TOKENIZERS); pass them as --namespace-id to `npm run keys` and `npm run tokenizer:upload`."
  value       = { for name, ns in cloudflare_workers_kv_namespace.this : name => ns.id }
}

output "migration_tag" {
  description = "The Durable Object migration tag this configuration brings the worker to (the last entry of local.durable_object_migrations)."
  value       = local.migration_tags[length(local.migration_tags) - 1]
}

output "cron_schedules" {
  description = "Cron Triggers of the worker (the backlog publisher runs on them)."
  value       = local.cron_schedules
}

output "models_json" {
  description = "The MODELS value the worker was deployed with."
  value       = local.plain_text_bindings.MODELS
}
