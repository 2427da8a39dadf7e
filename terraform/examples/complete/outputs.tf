output "function_name" {
  description = "Name of the banshee Lambda function."
  value       = module.banshee.function_name
}

output "alarm_names" {
  description = "Alarms that invoke banshee."
  value       = module.banshee.alarm_names
}

output "config_parameter_name" {
  description = "SSM parameter with the policy configuration."
  value       = module.banshee.config_parameter_name
}

output "instance_id" {
  description = "ID of the protected instance."
  value       = aws_instance.web.id
}

output "static_blocklist_rule_numbers" {
  description = "Rule numbers of the static blocklist in the VPC's default network ACL."
  value       = module.banshee.static_blocklist_rule_numbers
}

output "instance_policy_arn" {
  description = "IAM policy that lets banshee on the instance block at VPC scope, attached to the instance's role."
  value       = module.banshee.instance_policy_arn
}
