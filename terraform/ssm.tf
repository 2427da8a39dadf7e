################################################################################
# Host blocks: the document the function runs on tagged instances
################################################################################

locals {
  # Parameters reach the script only as environment variables (SSM_<name>,
  # interpolationType ENV_VAR, SSM Agent 3.3.2746.0 or later): nothing is
  # spliced into the shell text, and the patterns reject anything else anyway.
  host_block_document = {
    schemaVersion = "2.2"
    description   = "banshee: block or unblock addresses in the host firewall of this instance (iptables + ipset)."
    # Names and allowed patterns are those of package hostfw/remote, which
    # builds the parameters (a Go test compares them).
    parameters = {
      action = {
        type              = "String"
        description       = "block or unblock"
        allowedPattern    = "^(block|unblock)$"
        interpolationType = "ENV_VAR"
      }
      targets = {
        type              = "String"
        description       = "IPv4/IPv6 addresses or CIDRs, separated by spaces or commas."
        allowedPattern    = "^[0-9A-Fa-f:./, ]+$"
        maxChars          = 4000
        interpolationType = "ENV_VAR"
      }
      ttl = {
        type              = "String"
        description       = "How long a block lasts, as a Go duration (90s, 2h, 1h30m). Ignored by unblock."
        default           = "1h"
        allowedPattern    = "^([0-9]{1,7}[hms]){1,3}$"
        interpolationType = "ENV_VAR"
      }
      reason = {
        type              = "String"
        description       = "Why, recorded with the block: letters, digits, spaces and _ . , : / @ ( ) + = # -"
        default           = "banshee"
        allowedPattern    = "^[A-Za-z0-9 _.,:/@()+=#-]{0,256}$"
        interpolationType = "ENV_VAR"
      }
    }
    mainSteps = [
      {
        action = "aws:runShellScript"
        name   = "banshee"
        precondition = {
          StringEquals = ["platformType", "Linux"]
        }
        inputs = {
          timeoutSeconds = "120"
          runCommand = [
            "set -eu",
            "if [ -z \"$${SSM_action+x}\" ]; then echo 'banshee: SSM Agent 3.3.2746.0 or later is needed (parameters as environment variables)' >&2; exit 1; fi",
            "BANSHEE='${var.host_banshee_path}'",
            "case \"$SSM_action\" in",
            "  block) printf '%s\\n' \"$SSM_targets\" | tr ', ' '\\n\\n' | \"$BANSHEE\" block - --scope host --ttl \"$SSM_ttl\" --reason \"$SSM_reason\" -o json ;;",
            "  unblock) printf '%s\\n' \"$SSM_targets\" | tr ', ' '\\n\\n' | \"$BANSHEE\" unblock - --scope host -o json ;;",
            "  *) echo 'banshee: action must be block or unblock' >&2; exit 2 ;;",
            "esac",
          ]
        }
      },
    ]
  }
}

resource "aws_ssm_document" "host_block" {
  name            = "${var.name}-host-block"
  document_type   = "Command"
  document_format = "JSON"
  target_type     = "/AWS::EC2::Instance"
  content         = jsonencode(local.host_block_document)

  tags = local.tags
}

################################################################################
# Policy configuration read by the function, the CLI and the daemon
################################################################################

resource "aws_ssm_parameter" "config" {
  name        = local.config_parameter_name
  description = "banshee policy configuration (JSON, keys of banshee.yaml) for ${var.name}"
  type        = "String"
  tier        = "Standard"
  value       = jsonencode(local.config)

  tags = local.tags

  lifecycle {
    precondition {
      condition     = local.config_override_keys_known
      error_message = "The config_overrides name a key that banshee's configuration does not have (see defaults.json for the keys)."
    }
  }
}
