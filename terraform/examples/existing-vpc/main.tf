# banshee on a VPC that already exists, with logs already shipped: every
# network ACL of the VPC is managed (the IAM policy is scoped to the VPC).

module "banshee" {
  source = "../.."

  vpc_id              = var.vpc_id
  auth_log_group_name = var.auth_log_group_name
  flow_log_group_name = var.flow_log_group_name
  allowlist           = var.allowlist

  alarm_trigger = "alarm_action"

  instance_role_names = var.instance_role_names
}
