################################################################################
# The instances' policy: banshee watch and the banshee CLI on an instance
################################################################################

# Least privilege for the role of the instances that run banshee: the daemon
# and the CLI block at VPC scope through the same network ACLs as the
# function, with the instance's own credentials. A Go test in this directory
# derives the AWS API actions the banshee binary (cmd/banshee) calls and fails
# when this document grants one more or one less. Host blocks need no AWS
# permission.
data "aws_iam_policy_document" "instance" {
  # Discovery (instance → subnet → VPC, addresses), the security groups and
  # prefix lists that decide whether a source is already admitted, the VPC's
  # CIDRs and the network ACLs themselves. AWS offers no resource scope.
  statement {
    sid = "DescribeNetwork"
    actions = [
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkAcls",
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

  lifecycle {
    precondition {
      condition     = local.instance_role_names_attachable
      error_message = "The instance_role_names need create_instance_policy = true: without the policy there is nothing to attach."
    }
  }
}

resource "aws_iam_policy" "instance" {
  count = var.create_instance_policy ? 1 : 0

  name        = "${var.name}-instance"
  description = "Lets banshee on an instance (banshee watch, the banshee CLI) block at VPC scope in the network ACLs of ${var.name}"
  policy      = data.aws_iam_policy_document.instance.json

  tags = local.tags
}

# Role names are for_each keys: they must be known at plan time (a literal,
# or the name a role in the same configuration is given).
resource "aws_iam_role_policy_attachment" "instance" {
  for_each = var.create_instance_policy ? toset(var.instance_role_names) : toset([])

  role       = each.value
  policy_arn = aws_iam_policy.instance[0].arn
}
