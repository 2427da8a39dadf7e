package function

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/banshee-project/banshee/awsnacl"
	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/event"
	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/offenders"
	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/hostfw/remote"
	"github.com/banshee-project/banshee/policy"
)

// NACLs is what the function needs of awsnacl.Manager (one per
// invocation): the engine's edge, and the read of one subnet's ACL for the
// free-slot metric.
type NACLs interface {
	engine.Edge
	NACLFor(ctx context.Context, subnetID string) (policy.NACL, error)
}

// Hosts sends host-firewall changes to instances (hostfw/remote.Driver).
type Hosts interface {
	Run(ctx context.Context, r remote.Request) (remote.Result, error)
}

// Finder finds the offenders of an alarm (offenders.Finder).
type Finder interface {
	Find(ctx context.Context, a *event.Alarm) (offenders.Result, error)
}

// Deps are the function's collaborators. NACLs and Finder are built per
// invocation from the configuration in force.
type Deps struct {
	Config func(ctx context.Context) (policy.Config, error)
	NACLs  func(cfg policy.Config) NACLs
	Finder func(cfg policy.Config) (Finder, error)
	Hosts  Hosts // nil: host scope is not available (no SSM document configured)
	// Scope is the network ACLs the function may change; ACLs lists those
	// of Scope.VPCID for the scheduled sweep.
	Scope Scope
	ACLs  ACLLister
	// History reads the host command history of Document (banshee's SSM
	// document) for repeat offenders; nil: VPC blocks are the only record.
	History   CommandLister
	Document  string
	Log       *slog.Logger
	Metrics   io.Writer // EMF lines
	Now       func() time.Time
	RequestID func(ctx context.Context) string
	// Region is the function's own region; an alarm of another region is
	// an error (its logs and instances are not reachable from here).
	Region string
	// Alarms lists the alarms named with AlarmPrefix that stay in ALARM,
	// for the scheduled re-evaluation (sustain.go); nil: none.
	Alarms      AlarmsAPI
	AlarmPrefix string
}

// Function handles invocations.
type Function struct {
	d   Deps
	emf *metrics
}

// New returns a function over deps.
func New(d Deps) *Function {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = io.Discard
	}
	if d.RequestID == nil {
		d.RequestID = func(context.Context) string { return "" }
	}
	return &Function{d: d, emf: &metrics{w: d.Metrics, now: d.Now}}
}

// Response is what an invocation returns (and logs).
type Response struct {
	Shape     event.Shape          `json:"shape"`
	Alarm     string               `json:"alarm,omitempty"`
	State     string               `json:"state,omitempty"`
	Ignored   string               `json:"ignored,omitempty"`
	Action    string               `json:"action,omitempty"`
	Offenders *offenders.Result    `json:"offenders,omitempty"`
	Decisions []policy.Decision    `json:"decisions,omitempty"`
	VPCBlocks []policy.Block       `json:"vpc_blocks,omitempty"`
	Unblocked []policy.Block       `json:"unblocked,omitempty"`
	Host      []remote.Result      `json:"host_commands,omitempty"`
	Sweep     *awsnacl.SweepResult `json:"sweep,omitempty"`
	// Recreated are the denies someone else deleted before their expiry
	// that the scheduled run denied again (awsnacl.Manager.Restore);
	// NotRecreated those it left, with why.
	Recreated    []policy.Block        `json:"recreated,omitempty"`
	NotRecreated []awsnacl.NotRestored `json:"not_recreated,omitempty"`
	Fallbacks    []string              `json:"host_fallbacks,omitempty"`
	// Reevaluated are the alarms a scheduled run found still in ALARM.
	Reevaluated []Reevaluation `json:"reevaluated,omitempty"`
}

// Handle handles one raw invocation payload. A payload it cannot parse is
// an error and changes nothing; an enforcement failure is an error after
// what did succeed is logged, so the runtime retries (every write is
// idempotent).
func (f *Function) Handle(ctx context.Context, raw []byte) (Response, error) {
	ev, err := event.Parse(raw)
	if err != nil {
		f.d.Log.ErrorContext(ctx, "rejected event", "error", err.Error(), "bytes", len(raw))
		f.count(map[string]string{"Event": "rejected"}, "Events", 1)
		return Response{}, err
	}
	resp := Response{Shape: ev.Shape}
	f.count(map[string]string{"Event": string(ev.Shape)}, "Events", 1)
	switch {
	case ev.Alarm != nil:
		err = f.alarm(ctx, ev.Alarm, &resp)
	case ev.Schedule != nil:
		err = errors.Join(f.sweep(ctx, ev.Schedule, &resp), f.sustain(ctx, &resp))
	case ev.Manual != nil:
		err = f.manual(ctx, ev.Manual, &resp)
	}
	if err != nil {
		f.d.Log.ErrorContext(ctx, "invocation failed", "shape", ev.Shape, "error", err.Error())
		f.count(map[string]string{"Event": string(ev.Shape)}, "Errors", 1)
		return resp, err
	}
	f.d.Log.InfoContext(ctx, "invocation done", "shape", ev.Shape, "decisions", len(resp.Decisions), "vpc_blocks", len(resp.VPCBlocks), "host_commands", len(resp.Host))
	return resp, nil
}

// count writes one EMF count; a metrics writer that fails is logged, never
// fatal to enforcement.
func (f *Function) count(dims map[string]string, name string, v float64) {
	if err := f.emf.put(dims, map[string]float64{name: v}, "Count"); err != nil {
		f.d.Log.Warn("writing metric failed", "metric", name, "error", err.Error())
	}
}

func (f *Function) alarm(ctx context.Context, a *event.Alarm, resp *Response) error {
	resp.Alarm, resp.State = a.Name, a.State
	log := f.d.Log.With("alarm", a.Name, "region", a.Region, "state", a.State, "previous_state", a.PreviousState, "state_change_time", a.StateChangeTime)
	if !a.Firing() {
		resp.Ignored = fmt.Sprintf("state %s (from %s) is not a transition into ALARM", a.State, a.PreviousState)
		log.InfoContext(ctx, "alarm ignored", "reason", resp.Ignored)
		return nil
	}
	if f.d.Region != "" && a.Region != f.d.Region {
		return fmt.Errorf("alarm %q is in region %s, the function in %s: deploy the function in the alarm's region", a.Name, a.Region, f.d.Region)
	}
	cfg, err := f.d.Config(ctx)
	if err != nil {
		return err
	}
	finder, err := f.d.Finder(cfg)
	if err != nil {
		return err
	}
	found, err := finder.Find(ctx, a)
	if err != nil {
		return err
	}
	resp.Offenders = &found
	log.InfoContext(ctx, "offenders found", "offenders", len(found.Offenders), "below_threshold", found.Below, "events", found.Events,
		"truncated", found.Truncated, "metric_filters", found.Filters, "window_start", found.Start, "window_end", found.End)
	f.count(map[string]string{"Alarm": a.Name}, "Offenders", float64(len(found.Offenders)))
	if found.Truncated {
		log.WarnContext(ctx, "log search reached its bound; counts are partial", "events", found.Events)
	}
	attacks := found.Attacks(a.Name, cfg.Policy.FloodRate)
	if len(attacks) == 0 {
		resp.Ignored = "no source crossed its threshold in the alarm's window"
		log.WarnContext(ctx, "alarm without offenders", "reason", resp.Ignored, "metric_filters", found.Filters)
		return nil
	}
	tr := alarmTrigger(a)
	tr.reasons = found.Reasons(a.Name)
	return f.decideAndEnforce(ctx, cfg, attacks, tr, resp)
}

func (f *Function) manual(ctx context.Context, m *event.Manual, resp *Response) error {
	resp.Action = string(m.Action)
	cfg, err := f.d.Config(ctx)
	if err != nil {
		return err
	}
	nacls := f.d.NACLs(cfg)
	key := hashKey("manual", f.d.RequestID(ctx))
	if m.Action == event.ManualUnblock {
		return f.unblock(ctx, cfg, nacls, m, key, resp)
	}
	targets, err := nacls.Resolve(ctx, m.Instances, m.Subnet)
	if err != nil {
		return fmt.Errorf("manual %s: %w", m.Action, err)
	}
	reason := m.Reason
	if reason == "" {
		reason = "manual invoke"
	}
	atk := policy.Attack{
		Sources: m.Targets, Targets: targets, Kind: policy.KindManual, Origin: policy.OriginLambda,
		Reason: reason, TTL: m.TTL, Scope: m.Scope,
	}
	tr := trigger{id: manualEvent(f.d.RequestID(ctx)), reason: reason, since: f.d.Now().Add(-time.Hour)}
	if m.Action == event.ManualPlan {
		res, err := f.engine(cfg).Batch(ctx, f.batch(cfg, nacls, tr, []policy.Attack{atk}, false))
		if err != nil {
			return err
		}
		resp.Decisions = res.Decisions // the same call as a block, without enforcement
		return nil
	}
	return f.decideAndEnforce(ctx, cfg, []policy.Attack{atk}, tr, resp)
}

func (f *Function) unblock(ctx context.Context, cfg policy.Config, nacls NACLs, m *event.Manual, key string, resp *Response) error {
	var errs []error
	if m.Subnet != "" || (m.Scope != policy.ScopeHost && len(m.Instances) > 0) {
		subnets := []string{}
		if m.Subnet != "" {
			subnets = append(subnets, m.Subnet)
		} else {
			ts, err := nacls.Resolve(ctx, m.Instances, "")
			if err != nil {
				return fmt.Errorf("manual unblock: %w", err)
			}
			for _, t := range ts {
				if t.SubnetID != "" && !contains(subnets, t.SubnetID) {
					subnets = append(subnets, t.SubnetID)
				}
			}
		}
		if m.Scope != policy.ScopeHost {
			var managed []string
			for _, s := range subnets {
				if err := f.managed(ctx, nacls, s); err != nil {
					errs = append(errs, fmt.Errorf("manual unblock in %s: %w", s, err))
					continue
				}
				managed = append(managed, s)
			}
			if len(managed) > 0 {
				// The unblock every door runs, confined to the ACLs this
				// function manages.
				eng := engine.New(engine.Deps{Config: cfg, Now: f.d.Now,
					Edge: func(context.Context) (engine.Edge, error) { return nacls, nil }})
				ur, err := eng.Unblock(ctx, engine.UnblockRequest{Targets: m.Targets, Where: engine.VPCOnly, NACLs: managed})
				if ur != nil {
					resp.Unblocked = append(resp.Unblocked, ur.Lifted...)
					for _, u := range ur.Results {
						if len(u.CoveredBy) > 0 {
							f.d.Log.WarnContext(ctx, "still blocked by a wider block", "target", u.Target.String(), "message", u.Message)
						}
					}
				}
				if err != nil {
					errs = append(errs, fmt.Errorf("manual unblock in %s: %w", strings.Join(managed, ", "), err))
				}
			}
		}
	}
	if len(m.Instances) > 0 && m.Scope != policy.ScopeVPC {
		if f.d.Hosts == nil {
			errs = append(errs, errors.New("manual unblock on instances: no SSM document configured (BANSHEE_SSM_DOCUMENT)"))
		} else {
			r, err := f.d.Hosts.Run(ctx, remote.Request{Action: remote.Unblock, Targets: m.Targets, Reason: remote.CleanReason(m.Reason), Instances: m.Instances, Key: key, Since: f.d.Now().Add(-time.Hour)})
			resp.Host = append(resp.Host, r)
			if err != nil {
				errs = append(errs, fmt.Errorf("manual unblock on instances: %w", err))
			}
		}
	}
	f.count(map[string]string{"Action": "unblock"}, "Unblocks", float64(len(resp.Unblocked)))
	return errors.Join(errs...)
}

func (f *Function) sweep(ctx context.Context, s *event.Schedule, resp *Response) error {
	cfg, err := f.d.Config(ctx)
	if err != nil {
		return err
	}
	now := f.d.Now()
	ids, all, err := f.sweepIDs(ctx)
	if err != nil {
		return fmt.Errorf("sweep expired blocks: %w", err)
	}
	// The repair every door runs (engine.Reconcile), on the network ACLs
	// this function manages.
	res := awsnacl.SweepResult{Removed: []policy.Block{}}
	if all || len(ids) > 0 {
		nacls := f.d.NACLs(cfg)
		eng := engine.New(engine.Deps{Config: cfg, Now: func() time.Time { return now },
			Edge: func(context.Context) (engine.Edge, error) { return nacls, nil }})
		var rr *engine.ReconcileResult
		rr, err = eng.Reconcile(ctx, engine.VPCOnly, ids)
		if rr != nil {
			f.recreated(ctx, rr, resp)
			if rr.Sweep != nil {
				res = *rr.Sweep
			}
		}
	}
	resp.Sweep = &res
	f.d.Log.InfoContext(ctx, "swept expired NACL blocks", "rule", s.Rule, "network_acls", ids, "removed", len(res.Removed), "adopted", len(res.Adopted), "stale_tags", res.StaleTags)
	f.count(map[string]string{"Scope": string(policy.ScopeVPC)}, "Expired", float64(len(res.Removed)))
	f.warnVanished(ctx, res.Vanished)
	if err != nil {
		return fmt.Errorf("sweep expired blocks: %w", err)
	}
	return nil
}

// hashKey derives a de-duplication key (hex) from its parts.
func hashKey(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:24]
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
