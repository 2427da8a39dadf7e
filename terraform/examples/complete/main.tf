# A VPC with one public subnet and one instance whose SSH authentication log
# the CloudWatch agent ships to CloudWatch Logs, protected by banshee.

locals {
  name                = "banshee-complete"
  auth_log_group_name = "/banshee-complete/ec2/auth"

  # CloudWatch agent configuration: the auth log, one stream per instance ID
  # (the stream name is how the function finds the attacked instance).
  cloudwatch_agent_config = {
    logs = {
      logs_collected = {
        files = {
          collect_list = [
            {
              file_path       = "/var/log/secure"
              log_group_name  = local.auth_log_group_name
              log_stream_name = "{instance_id}"
            },
          ]
        }
      }
    }
  }
}

data "aws_availability_zones" "available" {
  state = "available"
}

data "aws_ssm_parameter" "al2023_arm64" {
  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

################################################################################
# Network
################################################################################

resource "aws_vpc" "this" {
  cidr_block           = "10.42.0.0/16"
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = {
    Name = local.name
  }
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id

  tags = {
    Name = local.name
  }
}

resource "aws_subnet" "public" {
  vpc_id                  = aws_vpc.this.id
  cidr_block              = "10.42.1.0/24"
  availability_zone       = data.aws_availability_zones.available.names[0]
  map_public_ip_on_launch = true

  tags = {
    Name = "${local.name}-public"
  }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id

  route {
    cidr_block = "0.0.0.0/0"
    gateway_id = aws_internet_gateway.this.id
  }

  tags = {
    Name = "${local.name}-public"
  }
}

resource "aws_route_table_association" "public" {
  subnet_id      = aws_subnet.public.id
  route_table_id = aws_route_table.public.id
}

################################################################################
# The protected instance
################################################################################

# Outbound HTTPS for the SSM agent, the CloudWatch agent, dnf and banshee's
# EC2 calls; inbound SSH comes only through the module's admin security group.
resource "aws_security_group" "egress" {
  name_prefix = "${local.name}-egress-"
  description = "Outbound traffic of the example instance"
  vpc_id      = aws_vpc.this.id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_egress_rule" "https" {
  security_group_id = aws_security_group.egress.id
  description       = "HTTPS to AWS endpoints and package mirrors"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_vpc_security_group_egress_rule" "http" {
  security_group_id = aws_security_group.egress.id
  description       = "HTTP to package mirrors"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = "0.0.0.0/0"
}

resource "aws_cloudwatch_log_group" "auth" {
  name              = local.auth_log_group_name
  retention_in_days = 30
}

data "aws_iam_policy_document" "instance_assume_role" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "instance" {
  name               = "${local.name}-instance"
  assume_role_policy = data.aws_iam_policy_document.instance_assume_role.json
}

resource "aws_iam_role_policy_attachment" "instance_ssm" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_role_policy_attachment" "instance_cloudwatch_agent" {
  role       = aws_iam_role.instance.name
  policy_arn = "arn:aws:iam::aws:policy/CloudWatchAgentServerPolicy"
}

resource "aws_iam_instance_profile" "instance" {
  name = "${local.name}-instance"
  role = aws_iam_role.instance.name
}

resource "aws_instance" "web" {
  ami                    = data.aws_ssm_parameter.al2023_arm64.value
  instance_type          = "t4g.micro"
  subnet_id              = aws_subnet.public.id
  vpc_security_group_ids = [module.banshee.admin_security_group_id, aws_security_group.egress.id]
  iam_instance_profile   = aws_iam_instance_profile.instance.name

  metadata_options {
    http_tokens = "required"
  }

  user_data = <<-EOT
    #!/bin/bash
    set -euo pipefail
    dnf install -y rsyslog amazon-cloudwatch-agent
    systemctl enable --now rsyslog
    cat > /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json <<'JSON'
    ${jsonencode(local.cloudwatch_agent_config)}
    JSON
    /opt/aws/amazon-cloudwatch-agent/bin/amazon-cloudwatch-agent-ctl -a fetch-config -m ec2 -s \
      -c file:/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json
  EOT

  tags = {
    Name    = "${local.name}-web"
    banshee = "enabled"
  }
}

################################################################################
# banshee
################################################################################

module "banshee" {
  source = "../.."

  name            = local.name
  vpc_id          = aws_vpc.this.id
  network_acl_ids = [aws_vpc.this.default_network_acl_id]

  auth_log_group_name        = aws_cloudwatch_log_group.auth.name
  ssh_auth_failure_threshold = 5

  create_flow_logs               = true
  rejected_connections_threshold = 500

  instance_tag = {
    key   = "banshee"
    value = "enabled"
  }

  # Each network keeps its rule number: removing one never renumbers the
  # others.
  static_blocklist = {
    "192.0.2.0/24"       = 50
    "203.0.113.0/24"     = 51
    "2001:db8:dead::/48" = 52
  }

  # The default ACL holds, per address family, at most these 2 static
  # denies, its allow rule 100 (nacl_allow_rules = 1, the default) and the
  # default rule: 4 of the quota's 20, which leaves 16 for the function.
  nacl_rule_range = {
    min = 1
    max = 16
  }

  create_admin_security_group = true
  admin_cidrs                 = var.admin_cidrs

  # banshee watch on the instance blocks at VPC scope with the instance's
  # own role.
  instance_role_names = [aws_iam_role.instance.name]

  config_overrides = {
    policy = {
      default_ttl = "2h"
    }
  }

  tags = {
    Project = local.name
  }
}
