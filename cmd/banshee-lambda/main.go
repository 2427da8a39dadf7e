package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/function"
	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/initerr"
)

func main() {
	fn, err := function.FromEnv(context.Background(), os.Getenv, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "banshee-lambda:", err)
		if rerr := initerr.Report(os.Getenv("AWS_LAMBDA_RUNTIME_API"), "Runtime.ConfigError", err); rerr != nil {
			fmt.Fprintln(os.Stderr, "banshee-lambda:", rerr)
		}
		os.Exit(1)
	}
	lambda.Start(fn)
}
