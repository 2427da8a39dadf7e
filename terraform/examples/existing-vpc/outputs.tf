output "function_arn" {
  description = "ARN of the banshee Lambda function."
  value       = module.banshee.function_arn
}

output "managed_network_acl_ids" {
  description = "Network ACLs banshee manages."
  value       = module.banshee.managed_network_acl_ids
}

output "function_environment" {
  description = "Environment the function runs with."
  value       = module.banshee.function_environment
}
