# The whitelist half: SSH only from the administrators' networks. The policy
# never blocks a source that a security group of the targets admits on purpose.
resource "aws_security_group" "admin" {
  count = var.create_admin_security_group ? 1 : 0

  name_prefix = "${var.name}-admin-"
  description = "banshee: SSH from the admin networks only"
  vpc_id      = var.vpc_id

  tags = merge(local.tags, { Name = "${var.name}-admin" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "admin_ssh" {
  for_each = var.create_admin_security_group ? toset(var.admin_cidrs) : toset([])

  security_group_id = aws_security_group.admin[0].id
  description       = "SSH from an admin network"
  ip_protocol       = "tcp"
  from_port         = var.ssh_port
  to_port           = var.ssh_port
  cidr_ipv4         = strcontains(each.value, ":") ? null : each.value
  cidr_ipv6         = strcontains(each.value, ":") ? each.value : null

  tags = local.tags
}
