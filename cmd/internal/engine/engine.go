package engine

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/hostfw"
	"github.com/banshee-project/banshee/policy"
)

// ErrRefused marks a request the policy refused (exit 3); nothing changed.
var ErrRefused = errors.New("refused by policy, nothing changed")

// UsageError is bad input or usage (exit 2); nothing changed.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Usagef returns a *UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Host is the part of the local host firewall (hostfw.Firewall) the engine
// uses.
type Host interface {
	Block(ctx context.Context, entries []hostfw.Entry) (hostfw.BlockResult, error)
	Unblock(ctx context.Context, prefixes []netip.Prefix) (absent []netip.Prefix, err error)
	List(ctx context.Context) ([]hostfw.Entry, error)
	Existing(ctx context.Context, prefixes []netip.Prefix) (map[netip.Prefix]hostfw.Entry, error)
	Recorded() ([]hostfw.Entry, error)
	Status(ctx context.Context) (hostfw.Status, error)
	Restore(ctx context.Context, check func(netip.Prefix) error) (hostfw.RestoreResult, error)
}

// Edge is the part of the network ACL manager (awsnacl.Manager) the engine
// uses.
type Edge interface {
	Resolve(ctx context.Context, instanceIDs []string, subnetID string) ([]policy.Target, error)
	FillSnapshot(ctx context.Context, targets []policy.Target, snap *policy.Snapshot) error
	Block(ctx context.Context, decisions []policy.Decision, req awsnacl.Request) ([]policy.Block, error)
	Unblock(ctx context.Context, subnetOrNACL string, prefixes []netip.Prefix) ([]policy.Block, error)
	List(ctx context.Context, subnetsOrNACLs ...string) ([]policy.Block, error)
	Sweep(ctx context.Context, now time.Time, subnetsOrNACLs ...string) (awsnacl.SweepResult, error)
	Vanished(ctx context.Context, now time.Time, subnetsOrNACLs ...string) ([]policy.Block, error)
	Restore(ctx context.Context, now time.Time, check func(policy.Block) error, subnetsOrNACLs ...string) (awsnacl.RestoreResult, error)
}

// Deps is what an Engine works with. Every function may be nil: no local
// host firewall, no subnet edge, nothing protected beyond the snapshot.
type Deps struct {
	Config policy.Config
	// Host opens the local host firewall (of the network namespace the
	// process runs in). Its error matters only when a host block is due.
	Host func(ctx context.Context) (Host, error)
	// Edge builds the network ACL manager; a *UsageError means "not
	// configured here" (no region, not on EC2).
	Edge func(ctx context.Context) (Edge, error)
	// Self is the instance id this process runs on, or an error off EC2.
	Self func(ctx context.Context) (string, error)
	// Protected lists the networks of this host no block may overlap:
	// SSH peers, own addresses, gateways, DNS resolvers (see Local).
	Protected func() []policy.Protected
	// Offences keeps past blocks for repeat-offender escalation (nil: the
	// door has its own record, or none).
	Offences Offences
	// Callers are the operator's own addresses (SSH_CONNECTION).
	Callers []netip.Addr
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Engine answers requests. It is cheap to build; one per command.
type Engine struct {
	d    Deps
	pol  *policy.Engine
	host Host
	herr error
	hset bool
	edge Edge
	eerr error
	eset bool
	self string
	// reasons are the merged reasons of re-blocked host entries.
	reasons map[netip.Prefix]string
}

// New returns an engine over d.
func New(d Deps) *Engine {
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Engine{d: d, pol: policy.New(d.Config)}
}

// Config is the configuration the engine decides with.
func (e *Engine) Config() policy.Config { return e.d.Config }

// hostFW opens the host firewall once.
func (e *Engine) hostFW(ctx context.Context) (Host, error) {
	if !e.hset {
		e.hset = true
		if e.d.Host == nil {
			e.herr = errors.New("no host firewall for this invocation")
		} else {
			e.host, e.herr = e.d.Host(ctx)
		}
	}
	return e.host, e.herr
}

// edgeMgr builds the edge once.
func (e *Engine) edgeMgr(ctx context.Context) (Edge, error) {
	if !e.eset {
		e.eset = true
		if e.d.Edge == nil {
			e.eerr = Usagef("no network ACL backend for this invocation")
		} else {
			e.edge, e.eerr = e.d.Edge(ctx)
		}
	}
	return e.edge, e.eerr
}

// selfID is the instance this process runs on ("" with the error off EC2).
func (e *Engine) selfID(ctx context.Context) (string, error) {
	if e.self != "" {
		return e.self, nil
	}
	if e.d.Self == nil {
		return "", awsnacl.ErrNotOnEC2
	}
	id, err := e.d.Self(ctx)
	if err == nil {
		e.self = id
	}
	return id, err
}

// SetSelf names the instance this process runs on (watch learns it once).
func (e *Engine) SetSelf(id string) { e.self = id }

// snapshot is the world every decision starts from: the clock, the
// operator's addresses and this host's protected networks.
func (e *Engine) snapshot() policy.Snapshot {
	s := policy.Snapshot{Now: e.d.Now().UTC(), Callers: e.d.Callers}
	if e.d.Protected != nil {
		s.Protected = e.d.Protected()
	}
	return s
}

// RestoreCheck is the protected-network check every restored or re-added
// record passes again: nothing that would overlap loopback, link-local, the
// metadata address, the allowlist, the caller's session or a network of
// this host goes back into the kernel.
func (e *Engine) RestoreCheck() func(netip.Prefix) error {
	snap := e.snapshot()
	return func(p netip.Prefix) error {
		if why := e.pol.Protected(p, snap.Callers, snap.Protected...); len(why) > 0 {
			return errors.New(strings.Join(why, "; "))
		}
		return nil
	}
}

// IsUsage reports whether err is bad input or usage (exit 2).
func IsUsage(err error) bool {
	var ue *UsageError
	var ie *policy.InputError
	return errors.As(err, &ue) || errors.As(err, &ie)
}

// Offline decides attacks the way plan does when EC2 is not read: the same
// policy, the operator's session and this host's protected networks, read
// once. scan replays logs through it.
func (e *Engine) Offline() func(policy.Attack) []policy.Decision {
	snap := e.snapshot()
	return func(a policy.Attack) []policy.Decision { return e.pol.Decide(a, snap) }
}
