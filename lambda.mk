# make lambda: the Lambda function's deployment zips for the Terraform module,
# dist/banshee-lambda-arm64.zip and dist/banshee-lambda-amd64.zip, each with
# one executable "bootstrap" (runtime provided.al2023). Pure Go: the zip is
# written by cmd/banshee-lambda/internal/mkzip (archive/zip), reproducibly.
LAMBDA_ARCHES := arm64 amd64
LAMBDA_ZIPS   := $(foreach a,$(LAMBDA_ARCHES),dist/banshee-lambda-$(a).zip)

.PHONY: lambda
lambda: $(LAMBDA_ZIPS)

dist/banshee-lambda-%.zip: FORCE
	@mkdir -p dist/lambda-$*
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build -tags lambda.norpc -trimpath -ldflags "-s -w" -o dist/lambda-$*/bootstrap ./cmd/banshee-lambda
	$(GO) run ./cmd/banshee-lambda/internal/mkzip dist/lambda-$*/bootstrap $@
	@ls -l $@

.PHONY: FORCE
FORCE:
