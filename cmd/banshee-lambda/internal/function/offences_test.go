package function

import (
	"context"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"github.com/banshee-project/banshee/cmd/banshee-lambda/internal/event"
	"github.com/banshee-project/banshee/policy"
)

// history is an SSM command history: it keeps the commands, answers
// ListCommands for a document and InvokedAfter, newest first, two per
// page, and counts its pages.
type history struct {
	cmds  []ssmtypes.Command
	pages int
}

func (h *history) ListCommands(_ context.Context, in *ssm.ListCommandsInput, _ ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error) {
	h.pages++
	var doc string
	var after time.Time
	for _, f := range in.Filters {
		switch f.Key {
		case ssmtypes.CommandFilterKeyDocumentName:
			doc = aws.ToString(f.Value)
		case ssmtypes.CommandFilterKeyInvokedAfter:
			t, err := time.Parse(time.RFC3339, aws.ToString(f.Value))
			if err != nil {
				return nil, err
			}
			after = t
		}
	}
	var match []ssmtypes.Command
	for i := len(h.cmds) - 1; i >= 0; i-- {
		c := h.cmds[i]
		if (doc == "" || aws.ToString(c.DocumentName) == doc) && aws.ToTime(c.RequestedDateTime).After(after) {
			match = append(match, c)
		}
	}
	start, _ := strconv.Atoi(aws.ToString(in.NextToken))
	end := min(start+2, len(match))
	out := &ssm.ListCommandsOutput{Commands: match[start:end]}
	if end < len(match) {
		out.NextToken = aws.String(strconv.Itoa(end))
	}
	return out, nil
}

func (h *history) send(doc, action, key, targets string, at time.Time) {
	h.cmds = append(h.cmds, ssmtypes.Command{
		CommandId: aws.String("c-" + strconv.Itoa(len(h.cmds))), DocumentName: aws.String(doc),
		Comment:           aws.String("banshee " + action + " " + key + " 0"),
		Parameters:        map[string][]string{"action": {action}, "targets": {targets}, "ttl": {"1h"}, "reason": {"x"}},
		RequestedDateTime: aws.Time(at),
	})
}

func TestRepeatOffences(t *testing.T) {
	now := time.Date(2026, 5, 9, 12, 0, 0, 0, time.UTC)
	cfg := policy.Default()
	const doc = "banshee-host-block"
	alarm := func(at time.Time) trigger {
		return alarmTrigger(&event.Alarm{Name: "banshee.ssh", StateChangeTime: at})
	}
	e1, e2, cur := alarm(now.Add(-3*time.Hour)), alarm(now.Add(-2*time.Hour)), alarm(now.Add(-time.Minute))
	h := &history{}
	h.send(doc, "block", e1.hostKey("g"), "198.51.100.1/32 198.51.100.2/32", now.Add(-3*time.Hour))
	h.send(doc, "block", e1.hostKey("g2"), "198.51.100.1/32", now.Add(-3*time.Hour))      // e1 again: one offence
	h.send(doc, "unblock", e2.hostKey("g"), "198.51.100.1/32", now.Add(-2*time.Hour))     // not an offence
	h.send("other-doc", "block", e2.hostKey("g"), "198.51.100.1/32", now.Add(-time.Hour)) // not banshee's
	h.send(doc, "block", e2.hostKey("g"), "198.51.100.2/32,198.51.100.9/32", now.Add(-2*time.Hour))
	h.send(doc, "block", cur.hostKey("g"), "198.51.100.1/32 198.51.100.2/32", now)            // this event's own
	h.send(doc, "block", "0123456789abcdef0123", "198.51.100.1/32", now.Add(-8*24*time.Hour)) // outside the window

	vpcBlock := func(cidr, reason string) policy.Block {
		return policy.Block{Target: netip.MustParsePrefix(cidr), Scope: policy.ScopeVPC, NACLID: "acl-1", RuleNumber: 3, Reason: reason}
	}
	blocks := []policy.Block{
		// Made by e2 for its second offence: vouches for two.
		vpcBlock("198.51.100.3/32", alarmReason("banshee.ssh", now.Add(-2*time.Hour), 1, "sshd 9 failures in 5m0s")),
		// The event being handled made it (a redelivery): none.
		vpcBlock("198.51.100.4/32", alarmReason("banshee.ssh", now.Add(-time.Minute), 0, "sshd 9 failures in 5m0s")),
		// ... and this one for a second offence: its prior one counts.
		vpcBlock("198.51.100.7/32", alarmReason("banshee.ssh", now.Add(-time.Minute), 1, "sshd 9 failures in 5m0s")),
		// The CLI's: one, now.
		vpcBlock("198.51.100.5/32", "pop3 bruteforce"),
		// e2 blocked .2 at both scopes: still one offence for e2.
		vpcBlock("198.51.100.2/32", alarmReason("banshee.ssh", now.Add(-2*time.Hour), 0, "sshd 9 failures in 5m0s")),
		// Nobody attacking now.
		vpcBlock("203.0.113.0/24", "threat list"),
	}
	srcs := []string{"198.51.100.1/32", "198.51.100.2/32", "198.51.100.3/32", "198.51.100.4/32", "198.51.100.5/32", "198.51.100.6/32", "198.51.100.7/32"}
	var attacks []policy.Attack
	for _, s := range srcs {
		attacks = append(attacks, policy.Attack{Sources: []netip.Prefix{netip.MustParsePrefix(s)}})
	}
	f := New(Deps{History: h, Document: doc, Now: func() time.Time { return now }})
	got, err := f.offences(context.Background(), cfg, cur, attacks, blocks)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, o := range got {
		count[o.Source.String()]++
		if o.At.After(now) || o.At.Before(now.Add(-time.Duration(cfg.Policy.RepeatWindow))) {
			t.Errorf("offence %+v outside the window", o)
		}
	}
	want := map[string]int{"198.51.100.1/32": 1, "198.51.100.2/32": 2, "198.51.100.3/32": 2, "198.51.100.5/32": 1, "198.51.100.7/32": 1}
	for _, s := range append(srcs, "198.51.100.9/32", "203.0.113.0/24") {
		if count[s] != want[s] {
			t.Errorf("%s: %d offences, want %d (all: %+v)", s, count[s], want[s], got)
		}
	}
	if h.pages != 3 {
		t.Errorf("history read in %d pages, want 3 (5 commands of the document in the window, 2 a page)", h.pages)
	}

	// The engine doubles the TTL per offence: a source alarmed a second time
	// gets twice the TTL, a third time four times.
	snap := policy.Snapshot{Now: now, Offences: got}
	for _, tc := range []struct {
		src string
		ttl time.Duration
	}{{"198.51.100.6/32", time.Hour}, {"198.51.100.1/32", 2 * time.Hour}, {"198.51.100.3/32", 4 * time.Hour}} {
		atk := policy.Attack{Sources: []netip.Prefix{netip.MustParsePrefix(tc.src)}, Scope: policy.ScopeHost}
		ds := policy.New(cfg).Decide(atk, snap)
		if len(ds) != 1 || ds[0].TTL != tc.ttl {
			t.Errorf("%s: decisions %+v, want ttl %s", tc.src, ds, tc.ttl)
		}
	}

	// The history is bounded: a longer one is read up to maxHistoryPages.
	long := &history{}
	for i := range 3 * maxHistoryPages {
		long.send(doc, "block", e1.hostKey(strconv.Itoa(i)), "198.51.100.1/32", now.Add(-time.Duration(i+1)*time.Minute))
	}
	f = New(Deps{History: long, Document: doc, Now: func() time.Time { return now }})
	if _, err := f.offences(context.Background(), cfg, cur, attacks, nil); err != nil || long.pages != maxHistoryPages {
		t.Errorf("long history: %d pages, err %v; want %d", long.pages, err, maxHistoryPages)
	}
}
