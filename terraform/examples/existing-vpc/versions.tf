terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region

  # banshee keeps its block metadata in banshee:* tags on the network
  # ACLs; without this, an aws_network_acl or aws_default_network_acl
  # managed here would plan to remove them.
  ignore_tags {
    key_prefixes = ["banshee:"]
  }
}
