################################################################################
# Naming and placement
################################################################################

variable "name" {
  description = "Name of this banshee installation. Prefixes every resource, and (followed by a dot) the names of the alarms the function reacts to. Lowercase letters, digits and single hyphens; it must not start with aws, amazon or amzn (SSM document names cannot)."
  type        = string
  default     = "banshee"

  validation {
    condition     = can(regex("^[a-z0-9]+(-[a-z0-9]+)*$", var.name)) && length(var.name) <= 32 && !can(regex("^(aws|amazon|amzn)", var.name))
    error_message = "The name must be 1-32 lowercase letters, digits and single hyphens, and must not start with aws, amazon or amzn."
  }
}

variable "tags" {
  description = "Tags added to every resource the module creates."
  type        = map(string)
  default     = {}
}

variable "vpc_id" {
  description = "ID of the VPC banshee protects. Its network ACLs are the ones the function may change when network_acl_ids is empty, and its flow logs feed the connection-probe alarm."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "The vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "network_acl_ids" {
  description = "IDs of the network ACLs banshee manages: the function may change their entries and tags, and the static blocklist is written into them. Empty means every network ACL of the VPC (the IAM policy is then scoped with an ec2:Vpc condition, and the static blocklist needs the VPC to exist at plan time)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.network_acl_ids : can(regex("^acl-[0-9a-f]{8,17}$", id))]) && length(distinct(var.network_acl_ids)) == length(var.network_acl_ids)
    error_message = "Each network ACL ID must look like acl-0123456789abcdef0, and none may repeat."
  }
}

################################################################################
# Lambda function
################################################################################

variable "lambda_zip_path" {
  description = "Path of the deployment package built by `make lambda`: a zip holding the `bootstrap` executable for linux/arm64. Null means dist/banshee-lambda-arm64.zip at the root of the banshee repository (path.module/../dist/banshee-lambda-arm64.zip)."
  type        = string
  default     = null

  validation {
    condition     = var.lambda_zip_path == null ? true : endswith(var.lambda_zip_path, ".zip")
    error_message = "The lambda_zip_path must name a .zip file."
  }
}

variable "lambda_timeout" {
  description = "Timeout of one invocation, in seconds. An alarm with many offenders makes several EC2 and SSM calls; the default leaves room for the SDK's retries."
  type        = number
  default     = 60

  validation {
    condition     = var.lambda_timeout >= 1 && var.lambda_timeout <= 900 && floor(var.lambda_timeout) == var.lambda_timeout
    error_message = "The lambda_timeout must be a whole number of seconds from 1 to 900."
  }
}

variable "lambda_memory_size" {
  description = "Memory of the function, in MB."
  type        = number
  default     = 128

  validation {
    condition     = var.lambda_memory_size >= 128 && var.lambda_memory_size <= 10240 && floor(var.lambda_memory_size) == var.lambda_memory_size
    error_message = "The lambda_memory_size must be a whole number of MB from 128 to 10240."
  }
}

variable "reserved_concurrent_executions" {
  description = "Reserved concurrency of the function, or null (the default) for none. Concurrent invocations are safe (banshee places NACL entries so that racing writers never exceed the quota, and every write is idempotent); 1 serializes them. AWS refuses a reservation that leaves the account fewer than 10 unreserved executions, which new accounts (a limit of 10) always do."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null ? true : var.reserved_concurrent_executions >= 1 && floor(var.reserved_concurrent_executions) == var.reserved_concurrent_executions
    error_message = "The reserved_concurrent_executions must be null or a whole number of at least 1."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the log groups the module creates (the function's and, when create_flow_logs is set, the flow logs'), in days."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_in_days)
    error_message = "The log_retention_in_days must be one of the values CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "sweep_schedule" {
  description = "EventBridge schedule expression on which the function sweeps expired blocks and re-evaluates the alarms named with the prefix that stay in ALARM (so that attackers who join a sustained attack are blocked too)."
  type        = string
  default     = "rate(1 minute)"

  validation {
    condition     = can(regex("^(rate\\([1-9][0-9]* (minute|minutes|hour|hours|day|days)\\)|cron\\([^()]+\\))$", var.sweep_schedule))
    error_message = "The sweep_schedule must be a rate(N unit) or cron(...) expression."
  }
}

################################################################################
# Alarms and detection
################################################################################

variable "alarm_trigger" {
  description = "How the module's alarms reach the function: \"eventbridge\" (a rule on CloudWatch Alarm State Change events for alarms named with the prefix), \"alarm_action\" (the alarms invoke the function directly as their alarm action; no rule is created) or \"sns\" (the alarms notify an SNS topic the module creates, to which the function is subscribed). Whichever it is, each run of sweep_schedule re-evaluates the alarms named with the prefix that stay in ALARM, since all three fire on state transitions only."
  type        = string
  default     = "eventbridge"

  validation {
    condition     = contains(["eventbridge", "alarm_action", "sns"], var.alarm_trigger)
    error_message = "The alarm_trigger must be eventbridge, alarm_action or sns."
  }
}

variable "alarm_actions" {
  description = "Further ARNs notified when one of the module's alarms fires, for example an SNS topic for the on-call team."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.alarm_actions : can(regex("^arn:aws[a-z-]*:", arn))])
    error_message = "Each alarm action must be an ARN."
  }
}

variable "metric_namespace" {
  description = "CloudWatch namespace of the metrics the module's metric filters publish. Null means Banshee/<name>, so that two installations never share a metric."
  type        = string
  default     = null

  validation {
    condition     = var.metric_namespace == null ? true : can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metric_namespace)) && !startswith(var.metric_namespace, "AWS/")
    error_message = "The metric_namespace must be 1-255 characters of letters, digits and . _ / # : -, and must not start with AWS/."
  }
}

variable "auth_log_group_name" {
  description = "Log group that receives the instances' SSH authentication log (for example /var/log/secure shipped by the CloudWatch agent, one log stream per instance ID). Null disables the SSH alarm."
  type        = string
  default     = null

  validation {
    condition     = var.auth_log_group_name == null ? true : can(regex("^[A-Za-z0-9._/#-]{1,512}$", var.auth_log_group_name))
    error_message = "The auth_log_group_name must be a CloudWatch Logs log group name (letters, digits and . _ / # -)."
  }
}

variable "ssh_auth_failure_pattern" {
  description = "CloudWatch Logs filter pattern that matches one SSH authentication failure in the auth log."
  type        = string
  default     = "?\"Failed password\" ?\"Invalid user\" ?\"authentication failure\" ?\"Failed publickey\""

  validation {
    condition     = length(var.ssh_auth_failure_pattern) >= 1 && length(var.ssh_auth_failure_pattern) <= 1024
    error_message = "The ssh_auth_failure_pattern must be 1-1024 characters."
  }
}

variable "ssh_auth_failure_threshold" {
  description = "Number of SSH authentication failures within one period, across the instances, at or above which the SSH alarm fires."
  type        = number
  default     = 5

  validation {
    condition     = var.ssh_auth_failure_threshold >= 1 && floor(var.ssh_auth_failure_threshold) == var.ssh_auth_failure_threshold
    error_message = "The ssh_auth_failure_threshold must be a whole number of at least 1."
  }
}

variable "create_flow_logs" {
  description = "Whether to create VPC flow logs (to CloudWatch Logs, with their own log group and delivery role) for the connection-probe alarm."
  type        = bool
  default     = false
}

variable "flow_log_group_name" {
  description = "Log group of the VPC's flow logs, in the default format. With create_flow_logs, the name of the group to create (null means /banshee/<name>/vpc-flow-logs); without it, an existing group that already receives the flow logs, or null to disable the connection-probe alarm."
  type        = string
  default     = null

  validation {
    condition     = var.flow_log_group_name == null ? true : can(regex("^[A-Za-z0-9._/#-]{1,512}$", var.flow_log_group_name))
    error_message = "The flow_log_group_name must be a CloudWatch Logs log group name (letters, digits and . _ / # -)."
  }
}

variable "flow_log_traffic_type" {
  description = "Traffic recorded by the flow logs the module creates. The connection-probe alarm counts ACCEPT records (probes the network ACLs let through); REJECT alone leaves it nothing to count."
  type        = string
  default     = "ACCEPT"

  validation {
    condition     = contains(["ACCEPT", "REJECT", "ALL"], var.flow_log_traffic_type)
    error_message = "The flow_log_traffic_type must be ACCEPT, REJECT or ALL."
  }
}

variable "rejected_connections_threshold" {
  description = "Number of connection probes (accepted TCP flow records of 1 or 2 packets to a port below 32768) within one period at or above which the connection-probe alarm fires."
  type        = number
  default     = 1000

  validation {
    condition     = var.rejected_connections_threshold >= 1 && floor(var.rejected_connections_threshold) == var.rejected_connections_threshold
    error_message = "The rejected_connections_threshold must be a whole number of at least 1."
  }
}

variable "alarm_period" {
  description = "Period of the module's alarms, in seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([10, 20, 30], var.alarm_period) || (var.alarm_period >= 60 && var.alarm_period % 60 == 0)
    error_message = "The alarm_period must be 10, 20, 30 or a multiple of 60."
  }
}

variable "extra_log_group_names" {
  description = "Further log groups the function may read, for alarms you add yourself on metric filters of those groups (name them with the module's alarm prefix)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.extra_log_group_names : can(regex("^[A-Za-z0-9._/#-]{1,512}$", name))])
    error_message = "Each extra log group name must be a CloudWatch Logs log group name (letters, digits and . _ / # -)."
  }
}

################################################################################
# Host blocks through SSM Run Command
################################################################################

variable "instance_tag" {
  description = "Tag that marks the instances the function may run banshee's SSM document on. It is the only way the function reaches an instance."
  type = object({
    key   = string
    value = string
  })
  default = {
    key   = "banshee"
    value = "enabled"
  }

  validation {
    condition     = can(regex("^[A-Za-z0-9 +.:/@_-]{1,128}$", var.instance_tag.key)) && can(regex("^[A-Za-z0-9 +=.:/@_-]{0,256}$", var.instance_tag.value)) && !startswith(var.instance_tag.key, "aws:")
    error_message = "The instance_tag key must be 1-128 characters of letters, digits, spaces and + . : / @ _ - (no =, no aws: prefix); the value 0-256 such characters or =."
  }
}

variable "host_banshee_path" {
  description = "Absolute path of the banshee executable on the instances, run by the SSM document."
  type        = string
  default     = "/usr/local/bin/banshee"

  validation {
    condition     = can(regex("^/[A-Za-z0-9._/-]+$", var.host_banshee_path))
    error_message = "The host_banshee_path must be an absolute path of letters, digits and . _ / -."
  }
}

################################################################################
# Instances running banshee (the daemon and the CLI block at VPC scope)
################################################################################

variable "create_instance_policy" {
  description = "Whether to create the IAM policy that lets banshee on an instance (banshee watch, the banshee CLI) block at VPC scope: the EC2 reads it needs and changes of the managed network ACLs' entries and tags only. Host blocks need no AWS permission."
  type        = bool
  default     = true
}

variable "instance_role_names" {
  description = "Names (not ARNs) of the IAM roles of the instances that run banshee, to attach the instance policy to. Needs create_instance_policy. The names must be known at plan time: literals, or the names given to roles in the same configuration."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for name in var.instance_role_names : can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", name))]) && length(distinct(var.instance_role_names)) == length(var.instance_role_names)
    error_message = "Each instance role name must be an IAM role name (1-64 letters, digits and + = , . @ _ -, not an ARN), and none may repeat."
  }
}

################################################################################
# Policy configuration (SSM parameter read by the function, the CLI and the daemon)
################################################################################

variable "config_parameter_name" {
  description = "Name of the SSM parameter that holds the policy configuration as JSON. Null means /<name>/config."
  type        = string
  default     = null

  validation {
    condition     = var.config_parameter_name == null ? true : can(regex("^/[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$", var.config_parameter_name))
    error_message = "The config_parameter_name must be a hierarchical SSM parameter name such as /banshee/config."
  }
}

variable "allowlist" {
  description = "Networks (CIDR) that banshee never blocks, written to the configuration's allowlist. The admin_cidrs are added to it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.allowlist : can(cidrhost(cidr, 0))])
    error_message = "Each allowlist entry must be an IPv4 or IPv6 CIDR."
  }
}

variable "config_overrides" {
  description = "Values that replace the policy package's defaults in the configuration, by section: for example { policy = { default_ttl = \"2h\" }, watch = { max_retry = 3 } }. Keys are those of banshee.yaml; the NACL rule range and quota come from nacl_rule_range and nacl_quota instead."
  type        = any
  default     = {}

  validation {
    condition     = can(keys(var.config_overrides)) && alltrue([for section in try(keys(var.config_overrides), []) : contains(["policy", "host", "nacl", "watch"], section)])
    error_message = "The config_overrides must be an object whose keys are among policy, host, nacl and watch."
  }

  validation {
    condition     = alltrue([for key in try(keys(var.config_overrides.nacl), []) : !contains(["rule_min", "rule_max", "quota"], key)])
    error_message = "Set the NACL rule range and quota with nacl_rule_range and nacl_quota, not in config_overrides."
  }
}

################################################################################
# Network ACLs: the function's range and the static blocklist
################################################################################

variable "nacl_rule_range" {
  description = "Rule numbers the function manages in each network ACL (inclusive). Keep it below the ACL's allow rules (usually 100) so that its denies take effect."
  type = object({
    min = number
    max = number
  })
  default = {
    min = 1
    max = 19
  }

  validation {
    condition     = floor(var.nacl_rule_range.min) == var.nacl_rule_range.min && floor(var.nacl_rule_range.max) == var.nacl_rule_range.max && var.nacl_rule_range.min >= 1 && var.nacl_rule_range.min <= var.nacl_rule_range.max && var.nacl_rule_range.max <= 32766
    error_message = "The nacl_rule_range must be whole numbers with 1 <= min <= max <= 32766."
  }
}

variable "nacl_allow_rules" {
  description = "Rules per direction and address family that each managed network ACL holds besides banshee's and the default rule (*): a default network ACL has one (rule 100, allow all). They count toward nacl_quota."
  type        = number
  default     = 1

  validation {
    condition     = var.nacl_allow_rules >= 0 && var.nacl_allow_rules <= 38 && floor(var.nacl_allow_rules) == var.nacl_allow_rules
    error_message = "The nacl_allow_rules must be a whole number from 0 to 38."
  }
}

variable "nacl_quota" {
  description = "Rules per direction and address family a network ACL may hold, the ACL's own rules included (AWS: 20 by default, up to 40 after a quota increase)."
  type        = number
  default     = 20

  validation {
    condition     = var.nacl_quota >= 2 && var.nacl_quota <= 40 && floor(var.nacl_quota) == var.nacl_quota
    error_message = "The nacl_quota must be a whole number from 2 to 40."
  }
}

variable "static_blocklist" {
  description = "Networks (canonical IPv4 or IPv6 CIDR) denied inbound on every managed network ACL, permanently, each with its rule number from static_blocklist_rule_range: { \"192.0.2.0/24\" = 50 }. An entry keeps its number, so adding or removing one never renumbers another. Do not move a number from one network to another in the same apply (the new rule could be created before the old one is deleted). Per address family, these rules, the ACL's own (nacl_allow_rules) and the default rule must leave the function at least one rule under nacl_quota."
  type        = map(number)
  default     = {}

  validation {
    condition     = alltrue([for cidr in keys(var.static_blocklist) : can(cidrhost(cidr, 0)) ? "${cidrhost(cidr, 0)}/${split("/", cidr)[1]}" == cidr && split("/", cidr)[1] != "0" : false])
    error_message = "Each static blocklist network must be a CIDR in canonical form (network address, lowercase IPv6) and narrower than /0."
  }

  validation {
    condition     = alltrue([for n in values(var.static_blocklist) : n >= 1 && n <= 32766 && floor(n) == n]) && length(distinct(values(var.static_blocklist))) == length(var.static_blocklist)
    error_message = "Each static blocklist rule number must be a whole number from 1 to 32766, and no two networks may share one."
  }

  validation {
    condition     = length([for cidr in keys(var.static_blocklist) : cidr if strcontains(cidr, ":")]) <= 38 && length([for cidr in keys(var.static_blocklist) : cidr if !strcontains(cidr, ":")]) <= 38
    error_message = "The static blocklist may hold at most 38 networks of each address family: a network ACL holds at most 40 rules per family, one of them the default rule and at least one left for the function."
  }
}

variable "static_blocklist_rule_range" {
  description = "Rule numbers reserved for the static blocklist (inclusive). Must not overlap nacl_rule_range and must hold the number of every static_blocklist entry; keep it below the ACL's allow rules."
  type = object({
    min = number
    max = number
  })
  default = {
    min = 50
    max = 89
  }

  validation {
    condition     = floor(var.static_blocklist_rule_range.min) == var.static_blocklist_rule_range.min && floor(var.static_blocklist_rule_range.max) == var.static_blocklist_rule_range.max && var.static_blocklist_rule_range.min >= 1 && var.static_blocklist_rule_range.min <= var.static_blocklist_rule_range.max && var.static_blocklist_rule_range.max <= 32766
    error_message = "The static_blocklist_rule_range must be whole numbers with 1 <= min <= max <= 32766."
  }
}

################################################################################
# Admin security group (the whitelist half)
################################################################################

variable "create_admin_security_group" {
  description = "Whether to create a security group that admits SSH from admin_cidrs only. Attach it to your instances; the policy then never blocks those networks."
  type        = bool
  default     = false
}

variable "admin_cidrs" {
  description = "Networks (IPv4 or IPv6 CIDR) of the administrators: admitted for SSH by the admin security group and added to the configuration's allowlist."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.admin_cidrs : can(cidrhost(cidr, 0)) ? split("/", cidr)[1] != "0" : false])
    error_message = "Each admin CIDR must be an IPv4 or IPv6 CIDR narrower than /0: whitelisting everyone is not a whitelist."
  }
}

variable "ssh_port" {
  description = "TCP port of SSH on the instances, admitted by the admin security group."
  type        = number
  default     = 22

  validation {
    condition     = var.ssh_port >= 1 && var.ssh_port <= 65535 && floor(var.ssh_port) == var.ssh_port
    error_message = "The ssh_port must be a TCP port number from 1 to 65535."
  }
}
