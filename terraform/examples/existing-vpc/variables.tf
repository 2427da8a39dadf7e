variable "region" {
  description = "AWS region of the VPC."
  type        = string
}

variable "vpc_id" {
  description = "ID of the existing VPC to protect."
  type        = string
}

variable "auth_log_group_name" {
  description = "Existing log group that receives the instances' SSH authentication log (one stream per instance ID)."
  type        = string
}

variable "flow_log_group_name" {
  description = "Existing log group that already receives the VPC's flow logs in the default format."
  type        = string
}

variable "allowlist" {
  description = "Networks banshee must never block, such as the office and the VPN."
  type        = list(string)
  default     = []
}

variable "instance_role_names" {
  description = "IAM roles of the instances that run banshee watch, which then block at VPC scope too."
  type        = list(string)
  default     = []
}
