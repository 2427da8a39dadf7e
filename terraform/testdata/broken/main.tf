# Fixture for TestReferenceCheckerFindsBrokenReferences: every commented
# line below holds exactly one reference that must not resolve.

variable "checked" {
  type        = string
  description = "A variable whose validation refers to another."

  validation {
    # var.other
    condition     = var.checked != var.other
    error_message = "Never."
  }
}

variable "other" {
  type        = string
  description = "Another variable."
}

locals {
  fine = var.checked
}

resource "aws_vpc" "this" {
  cidr_block = var.missing # var.missing
  tags = {
    a = local.missing                 # local.missing
    b = aws_s3_bucket.missing.arn     # no such resource
    c = data.aws_region.missing.name  # no such data source
    d = count.index                   # no count here
    e = each.value                    # no for_each here
    f = module.other.x                # no such module
    g = path.nowhere                  # path.module, root, cwd only
    h = module.banshee.no_such_output # an output the module lacks
    i = module.banshee.function_arn   # resolves
    j = local.fine                    # resolves
  }

  dynamic "ingress" {
    for_each = [var.checked]

    content {
      value = ingress.value # resolves: the iterator
      other = rule.value    # the iterator is "ingress", not "rule"
    }
  }
}

resource "aws_subnet" "counted" {
  count      = 2
  vpc_id     = aws_vpc.this.id
  cidr_block = cidrsubnet(aws_vpc.this.cidr_block, 8, count.index)
}

module "banshee" {
  source = "../.."
  vpc_id = aws_vpc.this.id
}
