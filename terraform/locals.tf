data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  account_id = data.aws_caller_identity.current.account_id

  # Alarms whose names start with this prefix reach the function. The dot
  # cannot occur in var.name, so one installation's prefix never matches
  # another's alarms.
  alarm_prefix     = "${var.name}."
  alarm_arn_prefix = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.alarm_prefix}"

  metric_namespace = coalesce(var.metric_namespace, "Banshee/${var.name}")

  lambda_zip_path       = coalesce(var.lambda_zip_path, "${path.module}/../dist/banshee-lambda-arm64.zip")
  function_log_group    = "/aws/lambda/${var.name}"
  config_parameter_name = coalesce(var.config_parameter_name, "/${var.name}/config")

  ##############################################################################
  # Network ACLs
  ##############################################################################

  vpc_arn = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc/${var.vpc_id}"

  managed_network_acl_ids = length(var.network_acl_ids) > 0 ? var.network_acl_ids : data.aws_network_acls.vpc[0].ids

  # ARNs the function may change entries and tags on: the given ACLs, or
  # every ACL (narrowed by an ec2:Vpc condition in the policy).
  managed_network_acl_arns = length(var.network_acl_ids) > 0 ? [
    for id in var.network_acl_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-acl/${id}"
  ] : ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-acl/*"]

  rule_ranges_disjoint  = var.static_blocklist_rule_range.max < var.nacl_rule_range.min || var.nacl_rule_range.max < var.static_blocklist_rule_range.min
  static_blocklist_fits = length(var.static_blocklist) <= var.static_blocklist_rule_range.max - var.static_blocklist_rule_range.min + 1

  # The quota counts the rules of one direction and address family, the
  # ACL's default rule (*) included. The static blocklist's rules of a family,
  # the function's reserved range and the default rule must fit it together:
  # otherwise the function would count on rule numbers the ACL cannot hold.
  static_blocklist_ipv4_rules   = length([for cidr in var.static_blocklist : cidr if !strcontains(cidr, ":")])
  static_blocklist_ipv6_rules   = length(var.static_blocklist) - local.static_blocklist_ipv4_rules
  nacl_rules_needed             = max(local.static_blocklist_ipv4_rules, local.static_blocklist_ipv6_rules) + (var.nacl_rule_range.max - var.nacl_rule_range.min + 1) + 1
  static_blocklist_within_quota = local.nacl_rules_needed <= var.nacl_quota

  # One deny per (ACL, blocklist entry). Keys use the ACL's position, which is
  # known at plan time even when the ACL is created in the same apply.
  static_blocklist_rules = merge([
    for acl_index, acl_id in local.managed_network_acl_ids : {
      for entry_index, cidr in var.static_blocklist : "${acl_index}/${cidr}" => {
        network_acl_id = acl_id
        rule_number    = var.static_blocklist_rule_range.min + entry_index
        cidr           = cidr
        ipv6           = strcontains(cidr, ":")
      }
    }
  ]...)

  ##############################################################################
  # Log groups the function reads
  ##############################################################################

  flow_log_group_name = var.create_flow_logs ? coalesce(var.flow_log_group_name, "/banshee/${var.name}/vpc-flow-logs") : var.flow_log_group_name

  watched_log_group_names = distinct(compact(concat(
    [var.auth_log_group_name, local.flow_log_group_name],
    var.extra_log_group_names,
  )))

  watched_log_group_arns = flatten([
    for name in local.watched_log_group_names : [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${name}",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${name}:*",
    ]
  ])

  ##############################################################################
  # Policy configuration
  ##############################################################################

  # defaults.json is policy.Default() marshalled to JSON; a Go test in this
  # directory fails when the two differ.
  config_defaults = jsondecode(file("${path.module}/defaults.json"))

  config = merge(
    {
      for section, values in local.config_defaults : section => merge(values, try(var.config_overrides[section], {}))
      if section != "allowlist"
    },
    {
      allowlist = distinct(concat(var.allowlist, var.admin_cidrs))
      nacl = merge(local.config_defaults.nacl, try(var.config_overrides.nacl, {}), {
        rule_min = var.nacl_rule_range.min
        rule_max = var.nacl_rule_range.max
        quota    = var.nacl_quota
      })
    },
  )

  # Every override key must be a key of the defaults: the function parses the
  # parameter strictly and would reject an unknown one at run time.
  config_override_keys_known = alltrue(flatten([
    for section, values in var.config_overrides : [
      for key in keys(values) : contains(keys(local.config_defaults[section]), key)
    ]
  ]))

  ##############################################################################
  # The function's environment: the one place its variables are named. The
  # rule range, quota and everything else come from the configuration.
  ##############################################################################

  # The network ACLs the function may change are those the IAM policy
  # grants: the given ACLs, else those of the VPC. BANSHEE_NACL_IDS is empty
  # when none are given; the function then keeps to the VPC.
  function_environment = {
    BANSHEE_CONFIG_PARAMETER = local.config_parameter_name
    BANSHEE_SSM_DOCUMENT     = aws_ssm_document.host_block.name
    BANSHEE_INSTANCE_TAG     = "${var.instance_tag.key}=${var.instance_tag.value}"
    BANSHEE_NACL_IDS         = join(",", var.network_acl_ids)
    BANSHEE_VPC_ID           = var.vpc_id
  }

  ##############################################################################
  # The instances' policy
  ##############################################################################

  # Roles to attach the instance policy to are named only when the policy is
  # created (a precondition on its document says so).
  instance_role_names_attachable = var.create_instance_policy || length(var.instance_role_names) == 0

  tags = merge(var.tags, { "banshee:installation" = var.name })
}
