################################################################################
# Alarm state changes → the function
################################################################################

resource "aws_cloudwatch_event_rule" "alarms" {
  count = var.alarm_trigger == "eventbridge" ? 1 : 0

  name        = "${var.name}-alarms"
  description = "banshee: alarms named ${local.alarm_prefix}* entering ALARM"

  event_pattern = jsonencode({
    source        = ["aws.cloudwatch"]
    "detail-type" = ["CloudWatch Alarm State Change"]
    detail = {
      alarmName = [{ prefix = local.alarm_prefix }]
      state = {
        value = ["ALARM"]
      }
    }
  })

  tags = local.tags
}

resource "aws_cloudwatch_event_target" "alarms" {
  count = var.alarm_trigger == "eventbridge" ? 1 : 0

  rule      = aws_cloudwatch_event_rule.alarms[0].name
  target_id = "banshee"
  arn       = aws_lambda_function.this.arn

  retry_policy {
    maximum_event_age_in_seconds = 3600
    maximum_retry_attempts       = 10
  }
}

resource "aws_lambda_permission" "alarms_eventbridge" {
  count = var.alarm_trigger == "eventbridge" ? 1 : 0

  statement_id  = "AllowAlarmStateChangeRule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.alarms[0].arn
}

# Alarms invoke the function directly when it is their alarm action: the
# module's own with alarm_trigger = "alarm_action", and alarms you add with
# the prefix. Scoped to this account's alarms named with the prefix.
resource "aws_lambda_permission" "alarms_direct" {
  statement_id   = "AllowPrefixedAlarmActions"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "lambda.alarms.cloudwatch.amazonaws.com"
  source_account = local.account_id
  source_arn     = "${local.alarm_arn_prefix}*"
}

################################################################################
# Alarm notifications through SNS → the function
################################################################################

resource "aws_sns_topic" "alarms" {
  count = var.alarm_trigger == "sns" ? 1 : 0

  name = "${var.name}-alarms"

  tags = local.tags
}

# CloudWatch publishes the notifications of this account's alarms named
# with the prefix, and nothing else may.
data "aws_iam_policy_document" "alarm_topic" {
  count = var.alarm_trigger == "sns" ? 1 : 0

  statement {
    sid       = "AlarmNotifications"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms[0].arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["${local.alarm_arn_prefix}*"]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  count = var.alarm_trigger == "sns" ? 1 : 0

  arn    = aws_sns_topic.alarms[0].arn
  policy = data.aws_iam_policy_document.alarm_topic[0].json
}

resource "aws_sns_topic_subscription" "alarms" {
  count = var.alarm_trigger == "sns" ? 1 : 0

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "lambda"
  endpoint  = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "alarms_sns" {
  count = var.alarm_trigger == "sns" ? 1 : 0

  statement_id  = "AllowAlarmTopic"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "sns.amazonaws.com"
  source_arn    = aws_sns_topic.alarms[0].arn
}

################################################################################
# Schedule → sweep of expired blocks
################################################################################

# Besides sweeping, each scheduled run re-evaluates the alarms named with
# the prefix that are still in ALARM: alarm actions, notifications and
# state-change events fire on transitions only, so a sustained attack would
# otherwise be handled once.
resource "aws_cloudwatch_event_rule" "sweep" {
  name                = "${var.name}-sweep"
  description         = "banshee: sweep expired blocks, re-evaluate alarms still in ALARM"
  schedule_expression = var.sweep_schedule

  tags = local.tags
}

resource "aws_cloudwatch_event_target" "sweep" {
  rule      = aws_cloudwatch_event_rule.sweep.name
  target_id = "banshee-sweep"
  arn       = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "sweep" {
  statement_id  = "AllowSweepSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.sweep.arn
}
