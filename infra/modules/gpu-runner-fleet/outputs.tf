output "autoscaling_group_name" {
  description = "Name of the runners' autoscaling group."
  value       = aws_autoscaling_group.this.name
}

output "launch_template_id" {
  description = "ID of the runners' launch template."
  value       = aws_launch_template.this.id
}

output "security_group_id" {
  description = "Security group of the runner instances."
  value       = aws_security_group.this.id
}

output "iam_role_arn" {
  description = "Instance role of the runners."
  value       = aws_iam_role.this.arn
}

output "secret_arn" {
  description = "Secrets Manager secret holding the runners' API_TOKEN, WEBHOOK_SIGNING_SECRET and optional S3 keys."
  value       = aws_secretsmanager_secret.this.arn
}

output "runner_pool" {
  description = "The Cog endpoints to put in the edge's MODELS runners list: the load balancer URL (alb mode); empty in instance mode, where instances come and go (see README)."
  value       = local.use_alb ? ["${local.alb_scheme}://${aws_lb.this[0].dns_name}"] : []
}

output "alb_dns_name" {
  description = "DNS name of the runner load balancer (alb mode); point a CNAME at it to match alb_certificate_arn."
  value       = try(aws_lb.this[0].dns_name, null)
}

output "scaling_metric" {
  description = "The CloudWatch metric the fleet scales on; something must publish it every minute (see README)."
  value = {
    namespace  = var.scaling.metric_namespace
    name       = var.scaling.metric_name
    dimensions = { QueueName = var.scaling.queue_name }
  }
}
