# A fleet of GPU hosts, each running one Cog-protocol runner container on port 5000: launch template, autoscaling
# group sized on queue depth, security groups open only to Cloudflare, instance role, and an ALB or per-instance endpoints.

locals {
  use_alb        = var.endpoint_mode == "alb"
  runner_port    = 5000
  alb_subnet_ids = length(var.alb_subnet_ids) > 0 ? var.alb_subnet_ids : var.subnet_ids
  listener_port  = var.alb_certificate_arn != null ? 443 : 80
  alb_scheme     = var.alb_certificate_arn != null ? "https" : "http"
  model_bucket   = var.model_s3_uri != null ? regex("^s3://([^/]+)", var.model_s3_uri)[0] : null
  ami_id         = coalesce(var.ami_id, try(nonsensitive(data.aws_ssm_parameter.gpu_ami[0].value), null))

  # The runner's configuration contract (gpu-runner/src/server/config.ts); secrets are added from Secrets Manager.
  environment = merge(
    {
      PORT          = tostring(local.runner_port)
      HOST          = "0.0.0.0"
      SLOTS         = "1"
      ORT_PROVIDERS = var.ort_providers
      LOG_LEVEL     = var.log_level
      S3_BUCKET     = var.s3_bucket
      S3_REGION     = var.s3_region
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

  secrets = { for k, v in {
    API_TOKEN              = var.api_token
    WEBHOOK_SIGNING_SECRET = var.webhook_signing_secret
    AWS_ACCESS_KEY_ID      = var.s3_access_key_id
    AWS_SECRET_ACCESS_KEY  = var.s3_secret_access_key
  } : k => v if v != null }

  tags = merge({ "sd:component" = "gpu-runner" }, var.tags)
}

data "aws_region" "current" {}

# AWS publishes the latest Deep Learning Base GPU AMI (NVIDIA driver, Docker, NVIDIA container toolkit) in SSM.
data "aws_ssm_parameter" "gpu_ami" {
  count = var.ami_id == null ? 1 : 0

  name = "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-amazon-linux-2023/latest/ami-id"
}

################################################################################
# Secrets
################################################################################

resource "aws_secretsmanager_secret" "this" {
  name_prefix             = "${var.name}-"
  description             = "Runner secrets: API_TOKEN, WEBHOOK_SIGNING_SECRET and optional S3 keys."
  recovery_window_in_days = 7
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  secret_id     = aws_secretsmanager_secret.this.id
  secret_string = jsonencode(local.secrets)
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
    sid       = "ReadRunnerSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.this.arn]
  }

  dynamic "statement" {
    for_each = local.model_bucket != null ? [1] : []
    content {
      sid       = "ReadModel"
      actions   = ["s3:GetObject", "s3:ListBucket"]
      resources = ["arn:aws:s3:::${local.model_bucket}", "arn:aws:s3:::${local.model_bucket}/*"]
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
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy_attachment" "ecr" {
  role       = aws_iam_role.this.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonEC2ContainerRegistryReadOnly"
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.this.name
  tags        = local.tags
}

################################################################################
# Network
################################################################################

resource "aws_security_group" "alb" {
  count = local.use_alb ? 1 : 0

  name_prefix = "${var.name}-alb-"
  description = "Runner load balancer: reachable only from Cloudflare."
  vpc_id      = var.vpc_id
  tags        = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_from_cloudflare" {
  for_each = local.use_alb ? toset(var.cloudflare_ip_ranges) : toset([])

  security_group_id = aws_security_group.alb[0].id
  description       = "Cloudflare Workers"
  ip_protocol       = "tcp"
  from_port         = local.listener_port
  to_port           = local.listener_port
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

resource "aws_vpc_security_group_egress_rule" "alb_to_runners" {
  count = local.use_alb ? 1 : 0

  security_group_id            = aws_security_group.alb[0].id
  description                  = "Cog API on the runners"
  ip_protocol                  = "tcp"
  from_port                    = local.runner_port
  to_port                      = local.runner_port
  referenced_security_group_id = aws_security_group.this.id
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-"
  description = "GPU runners: port 5000 only from the load balancer or Cloudflare."
  vpc_id      = var.vpc_id
  tags        = local.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "runner_from_alb" {
  count = local.use_alb ? 1 : 0

  security_group_id            = aws_security_group.this.id
  description                  = "Cog API from the load balancer"
  ip_protocol                  = "tcp"
  from_port                    = local.runner_port
  to_port                      = local.runner_port
  referenced_security_group_id = aws_security_group.alb[0].id
}

resource "aws_vpc_security_group_ingress_rule" "runner_from_cloudflare" {
  for_each = local.use_alb ? toset([]) : toset(var.cloudflare_ip_ranges)

  security_group_id = aws_security_group.this.id
  description       = "Cog API from Cloudflare Workers"
  ip_protocol       = "tcp"
  from_port         = local.runner_port
  to_port           = local.runner_port
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null
}

# Outbound: image pulls, Secrets Manager, S3/R2 uploads and webhooks to the edge.
resource "aws_vpc_security_group_egress_rule" "runner_all" {
  security_group_id = aws_security_group.this.id
  description       = "Registry, AWS APIs, object storage, edge webhooks"
  ip_protocol       = "-1"
  cidr_ipv4         = "0.0.0.0/0"
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
    associate_public_ip_address = !local.use_alb
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
    region       = data.aws_region.current.region
    secret_arn   = aws_secretsmanager_secret.this.arn
    image        = var.image
    model_s3_uri = var.model_s3_uri != null ? var.model_s3_uri : ""
    environment  = join("\n", [for k in sort(keys(local.environment)) : "${k}=${local.environment[k]}"])
  }))

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = var.name })
  }

  tags = local.tags
}

resource "aws_autoscaling_group" "this" {
  name_prefix         = "${var.name}-"
  vpc_zone_identifier = var.subnet_ids
  min_size            = var.min_size
  max_size            = var.max_size
  desired_capacity    = var.desired_capacity

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  target_group_arns         = local.use_alb ? [aws_lb_target_group.this[0].arn] : []
  health_check_type         = local.use_alb ? "ELB" : "EC2"
  health_check_grace_period = var.scaling.instance_warmup_seconds
  default_instance_warmup   = var.scaling.instance_warmup_seconds

  # GroupInServiceInstances feeds the per-instance backlog metric.
  enabled_metrics = ["GroupInServiceInstances", "GroupDesiredCapacity"]

  instance_refresh {
    strategy = "Rolling"
    preferences {
      min_healthy_percentage = 50
    }
  }

  tag {
    key                 = "Name"
    value               = var.name
    propagate_at_launch = true
  }

  lifecycle {
    ignore_changes = [desired_capacity]

    precondition {
      condition     = var.max_size >= var.min_size
      error_message = "max_size must be at least min_size."
    }
  }
}

# A runner picked for scale-in waits here (already out of the load balancer) so its in-flight prediction can finish.
resource "aws_autoscaling_lifecycle_hook" "drain" {
  name                   = "${var.name}-drain"
  autoscaling_group_name = aws_autoscaling_group.this.name
  lifecycle_transition   = "autoscaling:EC2_INSTANCE_TERMINATING"
  heartbeat_timeout      = var.scaling.scale_in_drain_seconds
  default_result         = "CONTINUE"
}

################################################################################
# Load balancer (endpoint_mode = "alb")
################################################################################

resource "aws_lb" "this" {
  count = local.use_alb ? 1 : 0

  name_prefix        = substr(var.name, 0, 6)
  load_balancer_type = "application"
  internal           = false
  security_groups    = [aws_security_group.alb[0].id]
  subnets            = local.alb_subnet_ids
  # Cog's sync POST /predictions can take a while; async PUT answers at once.
  idle_timeout = 300
  tags         = local.tags
}

resource "aws_lb_target_group" "this" {
  count = local.use_alb ? 1 : 0

  name_prefix          = substr(var.name, 0, 6)
  port                 = local.runner_port
  protocol             = "HTTP"
  vpc_id               = var.vpc_id
  target_type          = "instance"
  deregistration_delay = 30

  health_check {
    path                = "/health-check"
    matcher             = "200"
    interval            = 15
    healthy_threshold   = 2
    unhealthy_threshold = 4
  }

  tags = local.tags
}

resource "aws_lb_listener" "this" {
  count = local.use_alb ? 1 : 0

  load_balancer_arn = aws_lb.this[0].arn
  port              = local.listener_port
  protocol          = var.alb_certificate_arn != null ? "HTTPS" : "HTTP"
  certificate_arn   = var.alb_certificate_arn
  ssl_policy        = var.alb_certificate_arn != null ? "ELBSecurityPolicy-TLS13-1-2-2021-06" : null

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this[0].arn
  }
}

################################################################################
# Scaling on queue depth
################################################################################

# Target tracking on "predictions waiting or running per in-service runner", aiming at one per GPU.
resource "aws_autoscaling_policy" "backlog_per_instance" {
  name                   = "${var.name}-backlog-per-instance"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "TargetTrackingScaling"

  target_tracking_configuration {
    target_value = var.scaling.target_per_instance

    customized_metric_specification {
      metrics {
        id          = "backlog"
        label       = "Predictions waiting or running"
        return_data = false
        metric_stat {
          metric {
            namespace   = var.scaling.metric_namespace
            metric_name = var.scaling.metric_name
            dimensions {
              name  = "QueueName"
              value = var.scaling.queue_name
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
        label       = "Predictions per in-service runner"
        expression  = "backlog / in_service"
        return_data = true
      }
    }
  }
}

# Target tracking cannot divide by zero runners, so waking an empty fleet is a step policy on its own alarm.
resource "aws_autoscaling_policy" "wake" {
  name                   = "${var.name}-wake"
  autoscaling_group_name = aws_autoscaling_group.this.name
  policy_type            = "StepScaling"
  adjustment_type        = "ChangeInCapacity"

  step_adjustment {
    scaling_adjustment          = 1
    metric_interval_lower_bound = 0
  }
}

resource "aws_cloudwatch_metric_alarm" "wake" {
  alarm_name          = "${var.name}-jobs-waiting-no-runner"
  alarm_description   = "Predictions are waiting and no runner is in service."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_autoscaling_policy.wake.arn]

  metric_query {
    id          = "backlog"
    return_data = false
    metric {
      namespace   = var.scaling.metric_namespace
      metric_name = var.scaling.metric_name
      period      = 60
      stat        = "Maximum"
      dimensions = {
        QueueName = var.scaling.queue_name
      }
    }
  }

  metric_query {
    id          = "in_service"
    return_data = false
    metric {
      namespace   = "AWS/AutoScaling"
      metric_name = "GroupInServiceInstances"
      period      = 60
      stat        = "Average"
      dimensions = {
        AutoScalingGroupName = aws_autoscaling_group.this.name
      }
    }
  }

  metric_query {
    id          = "waiting_without_runner"
    expression  = "IF(backlog > 0 AND FILL(in_service, 0) == 0, 1, 0)"
    label       = "Jobs waiting with no runner in service"
    return_data = true
  }

  tags = local.tags
}
