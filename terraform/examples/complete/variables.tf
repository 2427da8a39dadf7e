variable "region" {
  description = "AWS region to deploy the example in."
  type        = string
  default     = "eu-west-1"
}

variable "admin_cidrs" {
  description = "Networks allowed to SSH into the example instance (and never blocked by banshee)."
  type        = list(string)
  default     = ["198.51.100.0/24"]
}
