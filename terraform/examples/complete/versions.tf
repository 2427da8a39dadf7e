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
  # ACLs; without this, resources managed here that carry tags would
  # plan to remove them.
  ignore_tags {
    key_prefixes = ["banshee:"]
  }

  default_tags {
    tags = {
      Example = "banshee-complete"
    }
  }
}
