package function

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/banshee-project/banshee/hostfw/remote"
	"github.com/banshee-project/banshee/policy"
)

// CommandLister is the part of the SSM client the function reads banshee's
// host command history with, for repeat offenders.
type CommandLister interface {
	ListCommands(ctx context.Context, params *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

// maxHistoryPages bounds the read of the host command history: at most
// this many ListCommands calls of 50 commands each per invocation.
const maxHistoryPages = 4

// Repeat offenders (DESIGN rule 7) are counted from what the function
// reads anyway or for one call:
//
//   - the VPC blocks of the snapshot (banshee's ACL metadata, already read):
//     a block of the function names its alarm state change and the repeat
//     count its TTL was doubled for (vpcReason), so it stands for that many
//     prior offences plus its own; a block of anyone else (the CLI, watch,
//     a manual invoke) counts as one offence, at the time of the read
//     (awsnacl keeps the first writer's reason when a later block only
//     extends the entry's expiry, so the count is that of the entry's
//     first block);
//   - the host command history: one ListCommands (up to maxHistoryPages)
//     of banshee's document over the repeat window; each block command is
//     an offence of each target, at the time it was sent, and its comment
//     names the event that sent it (trigger.hostKey).
//
// Offences are counted once per event and source (the host and VPC blocks
// of one alarm state change are one offence), and never for the event
// being handled: a redelivery does not double the TTL of its own blocks.
// What falls outside this view is not counted: VPC blocks swept after they
// expired, history beyond the bound (logged), blocks of other stores.
type offenceSet struct {
	now    time.Time
	skip   string                          // the event being handled
	events map[string]map[string]time.Time // source → event → time
	floor  map[string]int                  // source → offences a VPC block's repeat count vouches for
	at     map[string]time.Time            // source → time of that block
}

func newOffenceSet(now time.Time, skip string) *offenceSet {
	return &offenceSet{now: now, skip: skip, events: map[string]map[string]time.Time{}, floor: map[string]int{}, at: map[string]time.Time{}}
}

func (o *offenceSet) add(src netip.Prefix, event string, at time.Time) {
	if event == o.skip || !src.IsValid() {
		return
	}
	k := policy.Canonical(src).String()
	if o.events[k] == nil {
		o.events[k] = map[string]time.Time{}
	}
	if t, ok := o.events[k][event]; !ok || at.Before(t) {
		o.events[k][event] = at
	}
}

// block adds a VPC block of the snapshot.
func (o *offenceSet) block(b policy.Block) {
	id, at, repeat, ok := parseAlarmReason(b.Reason)
	if !ok {
		o.add(b.Target, fmt.Sprintf("nacl:%s/%d", b.NACLID, b.RuleNumber), o.now)
		return
	}
	vouched := repeat + 1
	if id == o.skip {
		// Made by an earlier delivery of this event: its prior offences
		// count, itself not, so the redelivery decides the same TTL.
		vouched = repeat
	} else {
		o.add(b.Target, id, at)
	}
	k := policy.Canonical(b.Target).String()
	if vouched > o.floor[k] {
		o.floor[k], o.at[k] = vouched, at
	}
}

// command adds a command of the host history.
func (o *offenceSet) command(c ssmtypes.Command) {
	if strings.Join(c.Parameters[remote.ParamAction], "") != string(remote.Block) {
		return
	}
	event := "ssm:" + aws.ToString(c.CommandId)
	if f := strings.Fields(aws.ToString(c.Comment)); len(f) == 4 && f[0] == "banshee" && len(f[2]) >= 12 {
		event = f[2][:12]
	}
	at := aws.ToTime(c.RequestedDateTime)
	if at.IsZero() || at.After(o.now) {
		at = o.now
	}
	for _, v := range c.Parameters[remote.ParamTargets] {
		for _, s := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == ',' }) {
			if p, err := policy.ParseTarget(s); err == nil {
				o.add(p, event, at)
			}
		}
	}
}

// offences returns the offences of the sources that overlap one of srcs.
func (o *offenceSet) offences(srcs []netip.Prefix) []policy.Offence {
	var out []policy.Offence
	keys := slices.Collect(maps.Keys(o.events))
	for k := range o.floor {
		if _, ok := o.events[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := netip.MustParsePrefix(k)
		if !slices.ContainsFunc(srcs, p.Overlaps) {
			continue
		}
		evs := o.events[k]
		for _, id := range slices.Sorted(maps.Keys(evs)) {
			out = append(out, policy.Offence{Source: p, At: evs[id]})
		}
		for n := len(evs); n < o.floor[k]; n++ {
			out = append(out, policy.Offence{Source: p, At: o.at[k]})
		}
	}
	return out
}

// offences derives the snapshot's repeat offences of the attacks' sources
// (see offenceSet).
func (f *Function) offences(ctx context.Context, cfg policy.Config, tr trigger, attacks []policy.Attack, blocks []policy.Block) ([]policy.Offence, error) {
	var srcs []netip.Prefix
	for _, a := range attacks {
		srcs = append(srcs, a.Sources...)
	}
	now := f.d.Now()
	set := newOffenceSet(now, tr.id)
	for _, b := range blocks {
		if b.Scope == policy.ScopeVPC {
			set.block(b)
		}
	}
	if f.d.History != nil && f.d.Document != "" {
		in := &ssm.ListCommandsInput{
			MaxResults: aws.Int32(50),
			Filters: []ssmtypes.CommandFilter{
				{Key: ssmtypes.CommandFilterKeyDocumentName, Value: aws.String(f.d.Document)},
				{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: aws.String(now.Add(-time.Duration(cfg.Policy.RepeatWindow)).UTC().Format(time.RFC3339))},
			},
		}
		for page := 0; ; page++ {
			if page == maxHistoryPages {
				f.d.Log.WarnContext(ctx, "host command history longer than its bound; older offences not counted", "pages", page)
				break
			}
			out, err := f.d.History.ListCommands(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("read host command history of %s: %w", f.d.Document, err)
			}
			for _, c := range out.Commands {
				if aws.ToString(c.DocumentName) == f.d.Document {
					set.command(c)
				}
			}
			if aws.ToString(out.NextToken) == "" {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	return set.offences(srcs), nil
}
