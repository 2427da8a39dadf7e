output "function_name" {
  description = "Name of the banshee Lambda function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the banshee Lambda function."
  value       = aws_lambda_function.this.arn
}

output "function_role_arn" {
  description = "ARN of the function's IAM role."
  value       = aws_iam_role.function.arn
}

output "function_role_name" {
  description = "Name of the function's IAM role."
  value       = aws_iam_role.function.name
}

output "instance_policy_arn" {
  description = "ARN of the IAM policy for the roles of the instances that run banshee (attach it to roles not named in instance_role_names), or null without create_instance_policy."
  value       = one(aws_iam_policy.instance[*].arn)
}

output "function_log_group_name" {
  description = "Log group of the function."
  value       = aws_cloudwatch_log_group.function.name
}

output "function_environment" {
  description = "Environment variables the function receives."
  value       = local.function_environment
}

output "alarm_name_prefix" {
  description = "Alarms whose names start with this prefix reach the function (name your own alarms with it)."
  value       = local.alarm_prefix
}

output "alarm_names" {
  description = "Names of the alarms the module created, by purpose."
  value = merge(
    { for alarm in aws_cloudwatch_metric_alarm.ssh_auth_failures : "ssh_auth_failures" => alarm.alarm_name },
    { for alarm in aws_cloudwatch_metric_alarm.rejected_connections : "rejected_connections" => alarm.alarm_name },
  )
}

output "metric_namespace" {
  description = "CloudWatch namespace of the module's metrics."
  value       = local.metric_namespace
}

output "alarm_topic_arn" {
  description = "ARN of the SNS topic the module's alarms notify and the function is subscribed to (null unless alarm_trigger = \"sns\")."
  value       = one(aws_sns_topic.alarms[*].arn)
}

output "alarm_event_rule_arn" {
  description = "ARN of the EventBridge rule for alarm state changes (null with alarm_trigger = \"alarm_action\")."
  value       = one(aws_cloudwatch_event_rule.alarms[*].arn)
}

output "sweep_event_rule_arn" {
  description = "ARN of the EventBridge rule that schedules the sweep."
  value       = aws_cloudwatch_event_rule.sweep.arn
}

output "ssm_document_name" {
  description = "Name of the SSM document that blocks and unblocks addresses on an instance."
  value       = aws_ssm_document.host_block.name
}

output "ssm_document_arn" {
  description = "ARN of the host block SSM document."
  value       = aws_ssm_document.host_block.arn
}

output "config_parameter_name" {
  description = "Name of the SSM parameter holding the policy configuration (JSON)."
  value       = aws_ssm_parameter.config.name
}

output "config_parameter_arn" {
  description = "ARN of the SSM parameter holding the policy configuration."
  value       = aws_ssm_parameter.config.arn
}

output "config" {
  description = "The policy configuration written to the parameter, as an object."
  value       = local.config
}

output "managed_network_acl_ids" {
  description = "Network ACLs the function manages and the static blocklist is written into."
  value       = local.managed_network_acl_ids
}

output "nacl_rule_range" {
  description = "Rule numbers the function manages in each network ACL."
  value       = var.nacl_rule_range
}

output "static_blocklist_rule_numbers" {
  description = "Rule number of each static blocklist entry (the same in every managed network ACL)."
  value       = var.static_blocklist
}

output "nacl_function_rules" {
  description = "Rule numbers of nacl_rule_range the function can use in each managed network ACL: the range, or fewer when the static blocklist, the ACL's own rules and the default rule leave less of nacl_quota."
  value       = local.nacl_function_rules
}

output "flow_log_id" {
  description = "ID of the VPC flow log the module created, or null."
  value       = one(aws_flow_log.this[*].id)
}

output "flow_log_group_name" {
  description = "Log group of the VPC flow logs the connection-probe alarm watches, or null."
  value       = local.flow_log_group_name
}

output "admin_security_group_id" {
  description = "ID of the admin SSH security group, or null."
  value       = one(aws_security_group.admin[*].id)
}
