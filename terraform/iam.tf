################################################################################
# The function's role
################################################################################

data "aws_iam_policy_document" "function_assume_role" {
  statement {
    sid     = "LambdaAssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "function" {
  name               = "${var.name}-lambda"
  description        = "Role of the ${var.name} banshee function"
  assume_role_policy = data.aws_iam_policy_document.function_assume_role.json

  tags = local.tags
}

# Least privilege. The Go test in this directory derives the AWS API actions
# the function's code calls and fails when this document grants one more or
# one less. Resources are "*" only for reads AWS cannot scope to a resource.
data "aws_iam_policy_document" "function" {
  statement {
    sid = "FunctionLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:PutLogEvents",
    ]
    resources = ["${aws_cloudwatch_log_group.function.arn}:*"]
  }

  statement {
    sid = "DescribeNetwork"
    actions = [
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkAcls",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeVpcs",
      "ec2:GetManagedPrefixListEntries",
    ]
    resources = ["*"]
  }

  statement {
    sid = "ManageNetworkAclEntries"
    actions = [
      "ec2:CreateNetworkAclEntry",
      "ec2:DeleteNetworkAclEntry",
      "ec2:ReplaceNetworkAclEntry",
    ]
    resources = local.managed_network_acl_arns

    dynamic "condition" {
      for_each = length(var.network_acl_ids) > 0 ? [] : [local.vpc_arn]

      content {
        test     = "ArnEquals"
        variable = "ec2:Vpc"
        values   = [condition.value]
      }
    }
  }

  # banshee's metadata only: every tag key of the request starts with
  # banshee:, and the request names its keys (DeleteTags without keys
  # would delete every tag).
  statement {
    sid = "TagNetworkAcls"
    actions = [
      "ec2:CreateTags",
      "ec2:DeleteTags",
    ]
    resources = local.managed_network_acl_arns

    condition {
      test     = "ForAllValues:StringLike"
      variable = "aws:TagKeys"
      values   = [local.banshee_tag_keys]
    }

    condition {
      test     = "Null"
      variable = "aws:TagKeys"
      values   = ["false"]
    }

    dynamic "condition" {
      for_each = length(var.network_acl_ids) > 0 ? [] : [local.vpc_arn]

      content {
        test     = "ArnEquals"
        variable = "ec2:Vpc"
        values   = [condition.value]
      }
    }
  }

  # The scheduled run re-evaluates the installation's alarms that stay in
  # ALARM (alarm actions and events fire on transitions only).
  statement {
    sid       = "FindAlarmsInAlarm"
    actions   = ["cloudwatch:DescribeAlarms"]
    resources = ["${local.alarm_arn_prefix}*"]
  }

  statement {
    sid       = "FindMetricFilters"
    actions   = ["logs:DescribeMetricFilters"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = length(local.watched_log_group_arns) > 0 ? [local.watched_log_group_arns] : []

    content {
      sid       = "ReadWatchedLogs"
      actions   = ["logs:FilterLogEvents"]
      resources = statement.value
    }
  }

  statement {
    sid       = "ReadConfig"
    actions   = ["ssm:GetParameter"]
    resources = [aws_ssm_parameter.config.arn]
  }

  # The document's ARN is built from the caller's account: with the
  # provider's skip_requesting_account_id its own arn has no account id.
  statement {
    sid       = "RunHostBlockDocument"
    actions   = ["ssm:SendCommand"]
    resources = ["arn:${local.partition}:ssm:${local.region}:${local.account_id}:document/${aws_ssm_document.host_block.name}"]
  }

  # Finding earlier commands of the document (at-least-once delivery: the
  # same event must not send a command twice). AWS offers no resource scope.
  statement {
    sid       = "ListCommands"
    actions   = ["ssm:ListCommands"]
    resources = ["*"]
  }

  statement {
    sid       = "RunOnTaggedInstances"
    actions   = ["ssm:SendCommand"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:instance/*"]

    condition {
      test     = "StringEquals"
      variable = "ssm:resourceTag/${var.instance_tag.key}"
      values   = [var.instance_tag.value]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  name   = "${var.name}-lambda"
  role   = aws_iam_role.function.id
  policy = data.aws_iam_policy_document.function.json
}
