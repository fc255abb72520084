# A fleet of GPU hosts that pull work from the edge: each runs one runner container in pull mode (EDGE_URL,
# EDGE_RUNNER_TOKEN, EDGE_MODEL) with egress only, in an autoscaling group that sleeps at zero and scales on the edge's
# per-model CloudWatch Backlog metric; plus the PutMetricData-only IAM user whose key the edge publishes with.

locals {
  runner_port  = 5000
  model_bucket = var.model_s3_uri != null ? regex("^s3://([^/]+)", var.model_s3_uri)[0] : null
  ami_id       = coalesce(var.ami_id, try(nonsensitive(data.aws_ssm_parameter.gpu_ami[0].value), null))
  # The group's name is fixed (not a prefix) so user data can name it without a dependency cycle.
  asg_name       = var.name
  drain_hook     = "${var.name}-drain"
  ssm_env_path   = "/${var.name}/runner-env/"
  metric_backlog = "Backlog"
  # The edge publishes Backlog/Waiting/Running with one dimension, Model = "owner/name:version" (= EDGE_MODEL).
  metric_dimensions = { Model = var.model }

  # The runner's configuration contract (gpu-runner/src/config.ts, pull mode). Not secret: it goes into user
  # data. Secrets are SSM SecureString parameters under local.ssm_env_path, read at boot.
  environment = merge(
    {
      PORT          = tostring(local.runner_port)
      HOST          = "0.0.0.0"
      EDGE_URL      = var.edge_url
      EDGE_MODEL    = var.model
      SLOTS         = tostring(var.slots)
      ORT_PROVIDERS = var.ort_providers
      LOG_LEVEL     = var.log_level
      # On scale-in the instance stops the container with this much time to finish its leases (see the drain hook).
      SHUTDOWN_GRACE_MS = tostring(var.scaling.scale_in_drain_seconds * 1000)
      S3_BUCKET         = var.s3_bucket
      S3_REGION         = var.s3_region
      # Unused on AWS S3 but harmless; R2 and most non-AWS stores need path-style addressing.
      S3_FORCE_PATH_STYLE = tostring(var.s3_force_path_style)
    },
    { for k, v in {
      S3_ENDPOINT          = var.s3_endpoint
      S3_PUBLIC_BASE_URL   = var.s3_public_base_url
      ORT_INTRA_OP_THREADS = var.ort_intra_op_threads != null ? tostring(var.ort_intra_op_threads) : null
      ORT_INTER_OP_THREADS = var.ort_inter_op_threads != null ? tostring(var.ort_inter_op_threads) : null
    } : k => v if v != null },
    var.extra_environment,
  )

  # Secret environment variables => value. The key set is known at plan time (for_each needs that); the values are not.
  secret_names = concat(["EDGE_RUNNER_TOKEN"], var.use_s3_access_keys ? ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] : [])
  secrets = {
    EDGE_RUNNER_TOKEN     = var.edge_runner_token
    AWS_ACCESS_KEY_ID     = var.s3_access_key_id
    AWS_SECRET_ACCESS_KEY = var.s3_secret_access_key
  }

  tags = merge({ "sd:component" = "gpu-runner" }, var.tags)
}

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

# AWS publishes the latest Deep Learning Base GPU AMI (NVIDIA driver, Docker, NVIDIA container toolkit) in SSM.
data "aws_ssm_parameter" "gpu_ami" {
  count = var.ami_id == null ? 1 : 0

  name = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
}

################################################################################
# Runner secrets: one SecureString per environment variable, read by user data with get-parameters-by-path
################################################################################

resource "aws_ssm_parameter" "env" {
  for_each = toset(local.secret_names)

  name        = "${local.ssm_env_path}${each.key}"
  description = "Runner environment variable ${each.key} (read at boot into /etc/sd-runner/env)."
  type        = "SecureString"
  value       = local.secrets[each.key]
  tags        = local.tags

  lifecycle {
    precondition {
      condition     = nonsensitive(local.secrets[each.key] != null)
      error_message = "A runner secret is null: use_s3_access_keys needs s3_access_key_id and s3_secret_access_key."
    }
  }
}

################################################################################
# Instance role
################################################################################

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name_prefix        = "${var.name}-"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "runner" {
  statement {
    sid       = "ReadRunnerEnv"
    actions   = ["ssm:GetParametersByPath"]
    resources = ["arn:${data.aws_partition.current.partition}:ssm:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:parameter${trimsuffix(local.ssm_env_path, "/")}"]
  }

  # The instance reports a runner that never gets ready (SETUP_FAILED, DEFUNCT) and completes its own drain hook.
  statement {
    sid       = "OwnLifecycle"
    actions   = ["autoscaling:SetInstanceHealth", "autoscaling:CompleteLifecycleAction"]
    resources = [aws_autoscaling_group.this.arn]
  }

  dynamic "statement" {
    for_each = local.model_bucket != null ? [1] : []
    content {
      sid       = "ReadModel"
      actions   = ["s3:GetObject", "s3:ListBucket"]
      resources = ["arn:${data.aws_partition.current.partition}:s3:::${local.model_bucket}", "arn:${data.aws_partition.current.partition}:s3:::${local.model_bucket}/*"]
    }
  }
}

resource "aws_iam_role_policy" "runner" {
  name   = "runner"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.runner.json
}

resource "aws_iam_role_policy" "bucket" {
  count = var.s3_iam_policy_json != null ? 1 : 0

  name   = "images-bucket"
  role   = aws_iam_role.this.id
  policy = var.s3_iam_policy_json
}

resource "aws_iam_role_policy_attachment" "ssm" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy_attachment" "ecr" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.this.name
  tags        = local.tags
}

################################################################################
# Network: egress only. Runners open connections to the edge (leases), the registry, AWS APIs and the bucket;
# nothing connects to them, so the security group has no ingress rule at all.
################################################################################

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-"
  description = "GPU runners: no inbound traffic; outbound HTTPS to the edge, registry, AWS APIs and object storage."
  vpc_id      = var.vpc_id
  tags        = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.this.id
  description       = "HTTPS: edge lease API, container registry, SSM, S3/R2"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "extra" {
  for_each = { for r in var.extra_egress : "${r.protocol}-${r.port}-${r.cidr}" => r }

  security_group_id = aws_security_group.this.id
  description       = each.value.description
  ip_protocol       = each.value.protocol
  from_port         = each.value.port
  to_port           = each.value.port
  cidr_ipv4         = each.value.cidr
}

################################################################################
# Launch template and autoscaling group
################################################################################

resource "aws_launch_template" "this" {
  name_prefix   = "${var.name}-"
  image_id      = local.ami_id
  instance_type = var.instance_type

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  network_interfaces {
    associate_public_ip_address = var.assign_public_ip
    security_groups             = [aws_security_group.this.id]
    delete_on_termination       = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.root_volume_size_gb
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  # IMDSv2 only; hop limit 2 so the container can use the instance role for S3.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 2
  }

  user_data = base64encode(templatefile("${path.module}/user-data.sh.tftpl", {
    region         = data.aws_region.current.region
    ssm_env_path   = local.ssm_env_path
    image          = var.image
    model_s3_uri   = var.model_s3_uri != null ? var.model_s3_uri : ""
    environment    = join("\n", [for k in sort(keys(local.environment)) : "${k}=${local.environment[k]}"])
    port           = local.runner_port
    asg_name       = local.asg_name
    drain_hook     = local.drain_hook
    drain_seconds  = var.scaling.scale_in_drain_seconds
    grace_seconds  = var.health_check_grace_period_seconds
    unready_checks = var.unready_checks_before_replace
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = var.name })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  name                = local.asg_name
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.min_size
  max_size            = var.max_size

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  # EC2 status checks, plus the instance's own report (SetInstanceHealth) when GET /ready stays 503 past the grace
  # period, which has to cover pulling a multi-GB CUDA image, syncing the model and creating the ORT sessions.
  health_check_type         = "EC2"
  health_check_grace_period = var.health_check_grace_period_seconds
  default_instance_warmup   = var.health_check_grace_period_seconds

  # The scaling alarms read GroupDesiredCapacity and GroupInServiceInstances, which exist only when collected.
  enabled_metrics     = ["GroupDesiredCapacity", "GroupInServiceInstances", "GroupPendingInstances", "GroupTerminatingInstances"]
  metrics_granularity = "1Minute"

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 0
    }
  }

  # A runner picked for scale-in waits here so its leased predictions can finish (user data stops it gracefully).
  initial_lifecycle_hook {
    name                 = local.drain_hook
    lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
    heartbeat_timeout    = var.scaling.scale_in_drain_seconds + 60
    default_result       = "CONTINUE"
  }

  dynamic "tag" {
    for_each = local.tags
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    # The scaling policies own the desired capacity.
    ignore_changes = [desired_capacity]

    precondition {
      condition     = var.max_size >= var.min_size
      error_message = "max_size must be at least min_size."
    }
  }
}

################################################################################
# Scaling on the edge's Backlog metric (waiting + running predictions of this model, published every minute)
################################################################################

# 0 -> 1: work waits and the group is at zero. Target tracking cannot act here (backlog per instance divides by zero).
resource "aws_autoscaling_policy" "wake" {
  name                      = "${var.name}-wake"
  autoscaling_group_name    = aws_autoscaling_group.this.name
  policy_type               = "StepScaling"
  adjustment_type           = "ChangeInCapacity"
  estimated_instance_warmup = var.health_check_grace_period_seconds

  step_adjustment {
    scaling_adjustment          = 1
    metric_interval_lower_bound = 0
  }
}

resource "aws_cloudwatch_metric_alarm" "wake" {
  alarm_name          = "${var.name}-backlog-while-at-zero"
  alarm_description   = "Predictions of ${var.model} are waiting and the runner group is at zero: start the first runner."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.wake.arn]

  metric_query {
    id          = "backlog"
    return_data = false
    metric {
      namespace   = var.scaling.metric_namespace
      metric_name = local.metric_backlog
      period      = 60
      stat        = "Maximum"
      dimensions  = local.metric_dimensions
    }
  }

  metric_query {
    id          = "desired"
    return_data = false
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupDesiredCapacity"
      period      = 60
      stat        = "Minimum"
      dimensions  = { AutoScalingGroupName = aws_autoscaling_group.this.name }
    }
  }

  metric_query {
    id          = "backlog_at_zero"
    expression  = "IF(backlog > 0 AND FILL(desired, 0) == 0, backlog, 0)"
    label       = "Backlog while the group is at zero"
    return_data = true
  }

  tags = local.tags
}

# 1 -> N: target tracking on backlog per in-service runner (SLOTS leases each). Scale-in is left to the two policies
# below, so the idle period before sleeping is ours to choose rather than target tracking's own.
resource "aws_autoscaling_policy" "backlog_per_instance" {
  name                      = "${var.name}-backlog-per-instance"
  autoscaling_group_name    = aws_autoscaling_group.this.name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = var.health_check_grace_period_seconds

  target_tracking_configuration {
    target_value     = var.scaling.target_backlog_per_instance
    disable_scale_in = true

    customized_metric_specification {
      metrics {
        id          = "backlog"
        label       = "Predictions waiting or running"
        return_data = false
        metric_stat {
          metric {
            namespace   = var.scaling.metric_namespace
            metric_name = local.metric_backlog
            dimensions {
              name  = "Model"
              value = var.model
            }
          }
          stat = "Maximum"
        }
      }

      metrics {
        id          = "in_service"
        label       = "In-service runners"
        return_data = false
        metric_stat {
          metric {
            namespace   = "AWS/AutoScaling"
            metric_name = "GroupInServiceInstances"
            dimensions {
              name  = "AutoScalingGroupName"
              value = aws_autoscaling_group.this.name
            }
          }
          stat = "Average"
        }
      }

      metrics {
        id          = "per_instance"
        label       = "Backlog per in-service runner"
        expression  = "backlog / in_service"
        return_data = true
      }
    }
  }
}

# N -> N-1: at least one runner more than the backlog needs, for scale_in_minutes, while work remains.
resource "aws_autoscaling_policy" "shrink" {
  name                   = "${var.name}-shrink"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "StepScaling"
  adjustment_type        = "ChangeInCapacity"

  step_adjustment {
    scaling_adjustment          = -1
    metric_interval_lower_bound = 0
  }
}

resource "aws_cloudwatch_metric_alarm" "shrink" {
  alarm_name          = "${var.name}-backlog-surplus"
  alarm_description   = "More runners than the backlog of ${var.model} needs: remove one (it drains first)."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = var.scaling.scale_in_minutes
  datapoints_to_alarm = var.scaling.scale_in_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.shrink.arn]

  metric_query {
    id          = "backlog"
    return_data = false
    metric {
      namespace   = var.scaling.metric_namespace
      metric_name = local.metric_backlog
      period      = 60
      stat        = "Maximum"
      dimensions  = local.metric_dimensions
    }
  }

  metric_query {
    id          = "desired"
    return_data = false
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupDesiredCapacity"
      period      = 60
      stat        = "Maximum"
      dimensions  = { AutoScalingGroupName = aws_autoscaling_group.this.name }
    }
  }

  # Spare runners beyond what the backlog needs; only while there is a backlog (an empty line is the idle alarm's).
  metric_query {
    id          = "surplus"
    expression  = "IF(backlog > 0, FILL(desired, 0) - CEIL(backlog / ${var.scaling.target_backlog_per_instance}), 0)"
    label       = "Runners beyond the backlog's need"
    return_data = true
  }

  tags = local.tags
}

# N -> min_size (0): the backlog has been 0 for idle_minutes while runners are up. A minute without a datapoint
# counts as idle too (FILL): no metric means nothing to do, and a fleet must not stay up because the publisher stopped.
resource "aws_autoscaling_policy" "sleep" {
  name                   = "${var.name}-sleep"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "StepScaling"
  adjustment_type        = "ExactCapacity"

  step_adjustment {
    scaling_adjustment          = var.min_size
    metric_interval_lower_bound = 0
  }
}

resource "aws_cloudwatch_metric_alarm" "idle" {
  alarm_name          = "${var.name}-backlog-idle"
  alarm_description   = "No prediction of ${var.model} waiting or running for ${var.scaling.idle_minutes} minutes while runners are up: scale to min_size."
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  evaluation_periods  = var.scaling.idle_minutes
  datapoints_to_alarm = var.scaling.idle_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.sleep.arn]

  metric_query {
    id          = "backlog"
    return_data = false
    metric {
      namespace   = var.scaling.metric_namespace
      metric_name = local.metric_backlog
      period      = 60
      stat        = "Maximum"
      dimensions  = local.metric_dimensions
    }
  }

  metric_query {
    id          = "desired"
    return_data = false
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupDesiredCapacity"
      period      = 60
      stat        = "Maximum"
      dimensions  = { AutoScalingGroupName = aws_autoscaling_group.this.name }
    }
  }

  metric_query {
    id          = "idle_while_up"
    expression  = "IF(FILL(backlog, 0) == 0 AND desired > ${var.min_size}, 1, 0)"
    label       = "Runners up with an empty backlog"
    return_data = true
  }

  tags = local.tags
}

################################################################################
# The edge's CloudWatch publisher: an IAM user that may only PutMetricData into the edge's namespace. Its access key
# is bound to the worker as CLOUDWATCH_ACCESS_KEY_ID / CLOUDWATCH_SECRET_ACCESS_KEY (Workers cannot assume roles).
################################################################################

resource "aws_iam_user" "metrics_publisher" {
  name = "${var.name}-metrics-publisher"
  path = "/sd/"
  tags = local.tags
}

data "aws_iam_policy_document" "metrics_publisher" {
  statement {
    sid       = "PutBacklogMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"] # PutMetricData has no resource ARNs; the namespace condition is the scope.
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.scaling.metric_namespace]
    }
  }
}

resource "aws_iam_user_policy" "metrics_publisher" {
  name   = "put-metric-data-${var.scaling.metric_namespace}"
  user   = aws_iam_user.metrics_publisher.name
  policy = data.aws_iam_policy_document.metrics_publisher.json
}

resource "aws_iam_access_key" "metrics_publisher" {
  user = aws_iam_user.metrics_publisher.name
}
