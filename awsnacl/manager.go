package awsnacl

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/banshee-project/banshee/policy"
)

// Defaults of the NACLConfig keys that tune the client (zero in the config
// means these).
const (
	DefaultMaxAttempts   = 5
	DefaultMaxBackoff    = 5 * time.Second
	DefaultCallTimeout   = 10 * time.Second
	DefaultMutatingBurst = 20
	DefaultMutatingRate  = 2.0
	DefaultOrphanTTL     = time.Hour
	// DefaultReadMaxAge is how long a NACL read serves later calls of the
	// same Manager (one invocation) before it is read again.
	DefaultReadMaxAge = 30 * time.Second
)

// Manager finds network ACLs and manages banshee's deny entries in them.
// It is meant to live for one invocation (a CLI command, a Lambda event):
// what it reads is cached for that long and never shared across Managers.
// Its methods are safe for concurrent use; writes to one NACL are
// serialized inside a Manager and made safe across processes by EC2's
// unique rule numbers (see doc.go).
type Manager struct {
	ec2     EC2API
	cfg     policy.NACLConfig
	now     func() time.Time
	limit   *bucket
	maxAge  time.Duration
	orphTTL time.Duration
	grace   time.Duration // how long an entry is seen without metadata before Sweep adopts it
	// cidrMaxAge is how long VPC CIDRs cached in a NACL tag are trusted
	// (nacl.vpc_cidr_max_age; 0: never).
	cidrMaxAge time.Duration

	mu        sync.Mutex
	instances map[string]instance       // by instance id
	nacls     map[string]*naclState     // by NACL id
	bySubnet  map[string]string         // subnet id → NACL id
	vpcs      map[string]vpcInfo        // by VPC id
	plists    map[string][]netip.Prefix // managed prefix lists by id
	locks     map[string]*sync.Mutex    // per NACL id: one writer per Manager
}

// Option configures a Manager.
type Option func(*Manager)

// WithClock sets the clock (tests).
func WithClock(now func() time.Time) Option { return func(m *Manager) { m.now = now } }

// WithMutatingLimit sets the client-side bucket for mutating calls.
func WithMutatingLimit(rate float64, burst int) Option {
	return func(m *Manager) { m.limit = newBucket(rate, burst, m.now) }
}

// New returns a Manager over client. Zero tuning keys of cfg take the
// package defaults.
func New(client EC2API, cfg policy.NACLConfig, opts ...Option) *Manager {
	if cfg.RuleMin == 0 && cfg.RuleMax == 0 {
		d := policy.Default().NACL
		cfg.RuleMin, cfg.RuleMax = d.RuleMin, d.RuleMax
	}
	if cfg.Quota == 0 {
		cfg.Quota = policy.Default().NACL.Quota
	}
	m := &Manager{
		ec2:        client,
		cfg:        cfg,
		now:        time.Now,
		maxAge:     DefaultReadMaxAge,
		orphTTL:    orDefault(time.Duration(cfg.OrphanTTL), DefaultOrphanTTL),
		grace:      orDefault(time.Duration(cfg.OrphanGrace), DefaultOrphanGrace),
		cidrMaxAge: max(0, time.Duration(cfg.VPCCIDRMaxAge)),
		instances:  map[string]instance{},
		nacls:      map[string]*naclState{},
		bySubnet:   map[string]string{},
		vpcs:       map[string]vpcInfo{},
		plists:     map[string][]netip.Prefix{},
		locks:      map[string]*sync.Mutex{},
	}
	rate := cfg.MutatingRate
	if rate <= 0 {
		rate = DefaultMutatingRate
	}
	burst := cfg.MutatingBurst
	if burst <= 0 {
		burst = DefaultMutatingBurst
	}
	m.limit = newBucket(rate, burst, func() time.Time { return m.now() })
	for _, o := range opts {
		o(m)
	}
	return m
}

// NewFromConfig builds the EC2 client from awsCfg with NewRetryer and a
// per-attempt timeout (nacl.call_timeout), and returns New over it.
func NewFromConfig(awsCfg aws.Config, cfg policy.NACLConfig, opts ...Option) *Manager {
	client := ec2.NewFromConfig(awsCfg, func(o *ec2.Options) {
		o.Retryer = NewRetryer(cfg)
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(orDefault(time.Duration(cfg.CallTimeout), DefaultCallTimeout))
	})
	return New(client, cfg, opts...)
}

// NewRetryer returns the retryer of the EC2 client: the SDK's standard
// retryer (exponential backoff with jitter, a client-side retry quota) with
// a bounded number of attempts (nacl.max_attempts, default 5) and backoff
// cap (nacl.max_backoff, default 5s). It retries throttling
// (RequestLimitExceeded), 5xx answers, connection errors and timeouts.
func NewRetryer(cfg policy.NACLConfig) aws.Retryer {
	attempts := cfg.MaxAttempts
	if attempts <= 0 {
		attempts = DefaultMaxAttempts
	}
	backoff := orDefault(time.Duration(cfg.MaxBackoff), DefaultMaxBackoff)
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.MaxBackoff = backoff
		o.Backoff = retry.NewExponentialJitterBackoff(backoff)
		// An endpoint that refuses the connection or a host name that
		// does not resolve will not answer on the next attempt either:
		// say so at once instead of after the whole backoff.
		o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(unreachable)}, o.Retryables...)
		o.Retryables = append(o.Retryables,
			retry.RetryableErrorCode{Codes: RetryCodes},
			retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{500: {}, 502: {}, 503: {}, 504: {}}},
		)
	})
}

// unreachable answers "do not retry" for a refused connection and a host
// name that does not resolve, and leaves every other error to the
// standard rules (timeouts and resets stay retried).
func unreachable(err error) aws.Ternary {
	var dns *net.DNSError
	if errors.Is(err, syscall.ECONNREFUSED) || errors.As(err, &dns) && dns.IsNotFound {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// naclLock returns the write lock of a NACL.
func (m *Manager) naclLock(id string) *sync.Mutex {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.locks[id]
	if !ok {
		l = &sync.Mutex{}
		m.locks[id] = l
	}
	return l
}

// mutate waits for the client-side bucket before a mutating call.
func (m *Manager) mutate(ctx context.Context) error { return m.limit.wait(ctx) }
