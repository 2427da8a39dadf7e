# Every network ACL of the VPC, when the caller did not name the ones to manage.
data "aws_network_acls" "vpc" {
  count = length(var.network_acl_ids) > 0 ? 0 : 1

  vpc_id = var.vpc_id
}

# The static default blocklist: inbound denies in their own rule-number range,
# which the function never touches (a precondition on the function checks
# that the ranges are disjoint).
resource "aws_network_acl_rule" "static_blocklist" {
  for_each = local.static_blocklist_rules

  network_acl_id  = each.value.network_acl_id
  rule_number     = each.value.rule_number
  egress          = false
  protocol        = "-1"
  rule_action     = "deny"
  cidr_block      = each.value.ipv6 ? null : each.value.cidr
  ipv6_cidr_block = each.value.ipv6 ? each.value.cidr : null
}
