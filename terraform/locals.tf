data "aws_partition" "current" {}

data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  # The region's id is its name under provider 5 and 6 alike (6 deprecates
  # name and adds region, which 5 lacks).
  region     = data.aws_region.current.id
  account_id = data.aws_caller_identity.current.account_id

  # Alarms whose names start with this prefix reach the function. The dot
  # cannot occur in var.name, so one installation's prefix never matches
  # another's alarms.
  alarm_prefix     = "${var.name}."
  alarm_arn_prefix = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.alarm_prefix}"

  # The tag keys banshee writes on network ACLs (awsnacl: banshee:rule:N,
  # banshee:seen:N, banshee:vpc-cidrs).
  banshee_tag_keys = "banshee:*"

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

  rule_ranges_disjoint = var.static_blocklist_rule_range.max < var.nacl_rule_range.min || var.nacl_rule_range.max < var.static_blocklist_rule_range.min

  # Every static blocklist rule number lies in static_blocklist_rule_range,
  # and no two entries share one.
  static_blocklist_numbers = values(var.static_blocklist)
  static_blocklist_fits = alltrue([
    for n in local.static_blocklist_numbers : n >= var.static_blocklist_rule_range.min && n <= var.static_blocklist_rule_range.max
  ]) && length(distinct(local.static_blocklist_numbers)) == length(local.static_blocklist_numbers)

  # The quota counts the rules of one direction and address family: the
  # static blocklist's, the ACL's own (nacl_allow_rules, such as rule 100 of
  # a default ACL), the default rule (*) and the function's. The function
  # keeps at least one rule; it uses as many numbers of its range as the
  # quota leaves (banshee counts every entry before it writes one), which
  # is nacl_function_rules.
  static_blocklist_ipv4_rules   = length([for cidr in keys(var.static_blocklist) : cidr if !strcontains(cidr, ":")])
  static_blocklist_ipv6_rules   = length(var.static_blocklist) - local.static_blocklist_ipv4_rules
  nacl_rules_outside            = max(local.static_blocklist_ipv4_rules, local.static_blocklist_ipv6_rules) + var.nacl_allow_rules + 1
  nacl_function_rules           = max(min(var.nacl_rule_range.max - var.nacl_rule_range.min + 1, var.nacl_quota - local.nacl_rules_outside), 0)
  static_blocklist_within_quota = local.nacl_function_rules >= 1

  # One deny per (ACL, blocklist entry), keyed by the ACL's position (known
  # at plan time even when the ACL is created in the same apply) and the
  # CIDR, numbered as the caller numbered it: adding or removing an entry
  # never touches another.
  static_blocklist_rules = merge([
    for acl_index, acl_id in local.managed_network_acl_ids : {
      for cidr, number in var.static_blocklist : "${acl_index}/${cidr}" => {
        network_acl_id = acl_id
        rule_number    = number
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
    BANSHEE_ALARM_PREFIX     = local.alarm_prefix
  }

  ##############################################################################
  # The instances' policy
  ##############################################################################

  # Roles to attach the instance policy to are named only when the policy is
  # created (a precondition on its document says so).
  instance_role_names_attachable = var.create_instance_policy || length(var.instance_role_names) == 0

  # Not under banshee:, which is banshee's metadata on network ACLs and
  # which the provider's ignore_tags should skip (see README.md).
  tags = merge(var.tags, { "banshee-installation" = var.name })
}
