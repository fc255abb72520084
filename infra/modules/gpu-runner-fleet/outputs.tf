output "autoscaling_group_name" {
  description = "Name of the runners' autoscaling group."
  value       = aws_autoscaling_group.this.name
}

output "launch_template_id" {
  description = "ID of the runners' launch template."
  value       = aws_launch_template.this.id
}

output "security_group_id" {
  description = "Security group of the runner instances (egress only)."
  value       = aws_security_group.this.id
}

output "iam_role_arn" {
  description = "Instance role of the runners."
  value       = aws_iam_role.this.arn
}

output "runner_env_ssm_path" {
  description = "SSM Parameter Store path holding the runners' secret environment (one SecureString per variable)."
  value       = local.ssm_env_path
}

output "scaling_metric" {
  description = "The CloudWatch metric the fleet scales on, as the edge must publish it (CLOUDWATCH_NAMESPACE, metric Backlog, dimension Model)."
  value = {
    namespace  = var.scaling.metric_namespace
    name       = local.metric_backlog
    dimensions = local.metric_dimensions
    region     = data.aws_region.current.region
  }
}

output "alarm_names" {
  description = "The scaling alarms: wake (backlog while at zero), shrink (surplus runners) and idle (scale to min_size)."
  value = {
    wake   = aws_cloudwatch_metric_alarm.wake.alarm_name
    shrink = aws_cloudwatch_metric_alarm.shrink.alarm_name
    idle   = aws_cloudwatch_metric_alarm.idle.alarm_name
  }
}

output "metrics_publisher_access_key_id" {
  description = "CLOUDWATCH_ACCESS_KEY_ID for the edge: access key of the IAM user allowed only cloudwatch:PutMetricData in the scaling namespace."
  value       = aws_iam_access_key.metrics_publisher.id
  sensitive   = true
}

output "metrics_publisher_secret_access_key" {
  description = "CLOUDWATCH_SECRET_ACCESS_KEY for the edge, matching metrics_publisher_access_key_id."
  value       = aws_iam_access_key.metrics_publisher.secret
  sensitive   = true
}
