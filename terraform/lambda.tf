resource "aws_cloudwatch_log_group" "function" {
  name              = local.function_log_group
  retention_in_days = var.log_retention_in_days

  tags = local.tags
}

resource "aws_lambda_function" "this" {
  function_name = var.name
  description   = "banshee: blocks attacking addresses found by the ${local.alarm_prefix}* alarms and sweeps expired blocks"
  role          = aws_iam_role.function.arn

  filename         = local.lambda_zip_path
  source_code_hash = filebase64sha256(local.lambda_zip_path)
  handler          = "bootstrap"
  runtime          = "provided.al2023"
  architectures    = ["arm64"]

  timeout                        = var.lambda_timeout
  memory_size                    = var.lambda_memory_size
  reserved_concurrent_executions = var.reserved_concurrent_executions

  environment {
    variables = local.function_environment
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = local.rule_ranges_disjoint
      error_message = "The static_blocklist_rule_range must not overlap nacl_rule_range: the function would delete or overwrite static blocklist rules."
    }

    precondition {
      condition     = local.static_blocklist_fits
      error_message = "Each static_blocklist rule number must lie in static_blocklist_rule_range (${var.static_blocklist_rule_range.min}-${var.static_blocklist_rule_range.max}), and no two entries may share one."
    }

    precondition {
      condition     = local.static_blocklist_within_quota
      error_message = "The static_blocklist (${local.static_blocklist_ipv4_rules} IPv4, ${local.static_blocklist_ipv6_rules} IPv6 rules), the ACL's own ${var.nacl_allow_rules} allow rules (nacl_allow_rules) and the default rule take ${local.nacl_rules_outside} of the nacl_quota (${var.nacl_quota}) rules of one address family and leave the function none: shorten the static_blocklist, or raise nacl_quota after raising the AWS quota."
    }
  }

  # The log group exists, with its retention, before the first invocation
  # could create it without one.
  depends_on = [
    aws_cloudwatch_log_group.function,
    aws_iam_role_policy.function,
  ]
}
