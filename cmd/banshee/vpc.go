package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/cmd/internal/watch"
	"github.com/banshee-project/banshee/policy"
)

// localIdentity is how a command learns which instance it runs on, and
// onEC2 whether to ask at all (no network call); tests replace them.
var (
	localIdentity = awsnacl.LocalIdentity
	onEC2         = awsnacl.OnEC2
)

// whoAmI returns this instance's identity, failing at once off EC2.
func whoAmI(ctx context.Context) (awsnacl.Identity, error) {
	if !onEC2() {
		return awsnacl.Identity{}, awsnacl.ErrNotOnEC2
	}
	return localIdentity(ctx)
}

// naclManager builds the Manager from the SDK's default chain
// (AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_EC2 included). Without a
// configured region it asks the instance metadata service for this
// instance's region; off EC2 that is a usage error.
func (a *app) naclManager(ctx context.Context) (*awsnacl.Manager, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	var opts []func(*config.LoadOptions) error
	if !onEC2() {
		// Off EC2 the metadata service cannot hold credentials: asking
		// it would only delay "no credentials" by its timeouts.
		opts = append(opts, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		id, err := whoAmI(ctx)
		if err != nil {
			return nil, usageErrorf("no AWS region: set AWS_REGION (and credentials), or run banshee on an EC2 instance")
		}
		awsCfg.Region = id.Region
	}
	return awsnacl.NewFromConfig(awsCfg, cfg.NACL), nil
}

// ec2Edge is watch's way to the subnet edge: the instance watch runs on,
// as IMDS names it, and the SDK configuration, loaded once. Each use
// builds its own engine and awsnacl Manager, so nothing read is cached
// beyond one enforcement.
type ec2Edge struct {
	self   string
	awsCfg aws.Config
}

// newWatchEdge is newEC2Edge for watch.
func newWatchEdge(ctx context.Context) (watch.Edge, error) {
	e, err := newEC2Edge(ctx)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// newEC2Edge returns the edge when AWS can be used from here: on EC2
// (IMDS names this instance) with a region from the SDK's chain or IMDS.
// Credentials are only tried by the first call.
func newEC2Edge(ctx context.Context) (*ec2Edge, error) {
	id, err := whoAmI(ctx)
	if err != nil {
		return nil, err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = id.Region
	}
	if awsCfg.Region == "" {
		return nil, errors.New("no AWS region (set AWS_REGION)")
	}
	return &ec2Edge{self: id.InstanceID, awsCfg: awsCfg}, nil
}

// engine is the shared engine on this edge, deciding with cfg, its
// Manager's clock running from at (the decision's snapshot time; zero: the
// system clock), so that the expiries it compares are on the clock the
// policy decided with. It has no host firewall: watch enforces host
// blocks itself, batched.
func (e *ec2Edge) Engine(cfg policy.Config, at time.Time) *engine.Engine {
	var opts []awsnacl.Option
	if !at.IsZero() {
		skew := time.Until(at)
		opts = append(opts, awsnacl.WithClock(func() time.Time { return time.Now().Add(skew) }))
	}
	eng := engine.New(engine.Deps{
		Config: cfg,
		Edge: func(context.Context) (engine.Edge, error) {
			return awsnacl.NewFromConfig(e.awsCfg, cfg.NACL, opts...), nil
		},
		Now: func() time.Time {
			if at.IsZero() {
				return time.Now()
			}
			return at
		},
	})
	eng.SetSelf(e.self)
	return eng
}

// world reads what watch's own decisions need to see VPC scope coming:
// this instance as the attacks' target (subnet, VPC, addresses), its
// subnet's network ACL and the VPC's CIDRs (read-only calls).
func (e *ec2Edge) World(ctx context.Context, cfg policy.Config) ([]policy.Target, policy.Snapshot, error) {
	atk, snap, err := e.Engine(cfg, time.Time{}).World(ctx, policy.Attack{Targets: []policy.Target{{InstanceID: e.self}}})
	return atk.Targets, snap, err
}

// enforce is block's path through the engine for an attack on this
// instance: it reads the world fresh, decides against it (with what watch
// knows: its host blocks, past offences and protected networks) and
// enforces the VPC decisions. It returns every decision: VPC blocks it
// enforced, and host blocks for the caller, including the fallback of any
// VPC block that found no room or failed (with the failure in err). With
// no decisions, nothing was decided (AWS failed before) and err says why.
func (e *ec2Edge) Enforce(ctx context.Context, cfg policy.Config, atk policy.Attack, known policy.Snapshot) ([]policy.Decision, error) {
	atk.Targets = []policy.Target{{InstanceID: e.self}}
	res, err := e.Engine(cfg, known.Now).Block(ctx, engine.BlockRequest{Attack: atk, Enforce: true, LeaveHost: true, Known: &known})
	if res == nil {
		return nil, err
	}
	return res.Decisions, err
}
