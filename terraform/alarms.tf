locals {
  # The function is the alarm action with alarm_trigger = "alarm_action",
  # the module's topic with "sns"; otherwise the EventBridge rule carries
  # the state change to it.
  alarm_actions = concat(
    var.alarm_trigger == "alarm_action" ? [aws_lambda_function.this.arn] : [],
    aws_sns_topic.alarms[*].arn,
    var.alarm_actions,
  )
}

################################################################################
# SSH authentication failures in the instances' auth log
################################################################################

resource "aws_cloudwatch_log_metric_filter" "ssh_auth_failures" {
  count = var.auth_log_group_name == null ? 0 : 1

  name           = "${var.name}-ssh-auth-failures"
  log_group_name = var.auth_log_group_name
  pattern        = var.ssh_auth_failure_pattern

  metric_transformation {
    name      = "SshAuthFailures"
    namespace = local.metric_namespace
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "ssh_auth_failures" {
  count = var.auth_log_group_name == null ? 0 : 1

  alarm_name        = "${local.alarm_prefix}ssh-auth-failures"
  alarm_description = "SSH authentication failures in ${var.auth_log_group_name}: banshee finds and blocks the sources."

  namespace           = local.metric_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.ssh_auth_failures[0].metric_transformation[0].name
  statistic           = "Sum"
  period              = var.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.ssh_auth_failure_threshold
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions

  tags = local.tags
}

################################################################################
# Connection probes in the VPC flow logs
################################################################################

# Resource names keep "rejected_connections" so that existing states move
# without a replacement of the metric filter's address; what they count
# changed: connection attempts the network ACL let through.
resource "aws_cloudwatch_log_metric_filter" "rejected_connections" {
  count = local.flow_log_group_name == null ? 0 : 1

  name           = "${var.name}-connection-probes"
  log_group_name = var.create_flow_logs ? aws_cloudwatch_log_group.flow_logs[0].name : local.flow_log_group_name

  # Default flow log format (version 2), space-delimited: accepted TCP
  # flows of 1 or 2 packets to a port below the ephemeral range (a probe of
  # a closed port, a half-open scan; the replies to the instances' own
  # connections go to ephemeral ports). Traffic a deny of banshee's stops
  # is recorded as REJECT and not counted, so blocking a source lowers the
  # metric. The function reads these records the same way
  # (cmd/banshee-lambda/internal/offenders/flowlog.go).
  pattern = "[version, account_id, interface_id, srcaddr, dstaddr, srcport, dstport < 32768, protocol = 6, packets < 3, bytes, start, end, action = \"ACCEPT\", log_status]"

  metric_transformation {
    name      = "ConnectionProbes"
    namespace = local.metric_namespace
    value     = "1"
    unit      = "Count"
  }
}

resource "aws_cloudwatch_metric_alarm" "rejected_connections" {
  count = local.flow_log_group_name == null ? 0 : 1

  alarm_name        = "${local.alarm_prefix}connection-probes"
  alarm_description = "Spike of connection probes that the network ACLs let through, in the flow logs of ${var.vpc_id}: banshee finds and blocks the sources."

  namespace           = local.metric_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.rejected_connections[0].metric_transformation[0].name
  statistic           = "Sum"
  period              = var.alarm_period
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.rejected_connections_threshold
  treat_missing_data  = "notBreaching"

  alarm_actions = local.alarm_actions

  tags = local.tags
}
