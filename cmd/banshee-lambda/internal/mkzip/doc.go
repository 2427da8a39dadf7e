// Command mkzip packs a Lambda bootstrap into the deployment zip that the
// Terraform module uploads: one entry named "bootstrap", mode 0755, a fixed
// timestamp so the same binary always gives the same zip (and the same
// source_code_hash). It is a build tool run by `make lambda` through
// `go run`; it must never be imported.
//
//	go run ./cmd/banshee-lambda/internal/mkzip BOOTSTRAP ZIP
package main
