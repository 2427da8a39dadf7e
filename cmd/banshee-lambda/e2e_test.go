package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/awsnacl/mototest"
)

// e2eOffenders: lines per source per instance index (i1, i2 in subnet A;
// i3 in subnet B).
var e2eOffenders = map[string]map[int]int{
	"203.0.113.10": {0: 6, 1: 6}, // two instances of one subnet → VPC
	"203.0.113.20": {2: 7},       // one instance → host
	"2001:db8::20": {2: 5},       // one instance, IPv6 → host
	"198.51.100.5": {0: 9},       // whitelisted office → refused
	"192.0.2.33":   {1: 2},       // under max_retry → nothing
}

type decision struct {
	Target     string   `json:"target"`
	Scope      string   `json:"scope"`
	Action     string   `json:"action"`
	Reasons    []string `json:"reasons"`
	TTLSeconds int64    `json:"ttl_seconds"`
	NACLID     string   `json:"nacl_id"`
	RuleNumber int      `json:"rule_number"`
}

type response struct {
	Ignored   string     `json:"ignored"`
	Decisions []decision `json:"decisions"`
	Sweep     *struct {
		Removed []struct {
			Target string `json:"target"`
			NACLID string `json:"nacl_id"`
		} `json:"removed"`
	} `json:"sweep"`
	Recreated []struct {
		Target     string `json:"target"`
		RuleNumber int    `json:"rule_number"`
	} `json:"recreated"`
	Host []struct {
		Sent []struct {
			Duplicate bool `json:"duplicate"`
		} `json:"sent"`
	} `json:"host_commands"`
}

func decode(t *testing.T, r result) response {
	t.Helper()
	if !r.ok {
		t.Fatalf("invocation failed: %s", r.body)
	}
	var resp response
	if err := json.Unmarshal(r.body, &resp); err != nil {
		t.Fatalf("response %s: %v", r.body, err)
	}
	return resp
}

func (r response) action(target string) string {
	if d, ok := r.decision(target); ok {
		return d.Action + "/" + d.Scope
	}
	return ""
}

func (r response) decision(target string) (decision, bool) {
	for _, d := range r.Decisions {
		if d.Target == target {
			return d, true
		}
	}
	return decision{}, false
}

func TestEndToEnd(t *testing.T) {
	if !mototest.Available() {
		t.Skip("moto_server not on PATH: install moto[server] to run the Lambda end-to-end test")
	}
	bin := buildBootstrap(t)
	w := newWorld(t, e2eOffenders)
	cnt := newCounter(t, w.moto)
	rt := newRuntimeAPI(t)
	_, out := startBootstrap(t, bin, rt, w.env(cnt.URL))
	defer func() {
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	}()
	wantHost := command{Document: document, Params: map[string]string{"action": "block", "targets": "203.0.113.20/32 2001:db8::20/128", "ttl": "1h", "reason": "alarm ssh-bruteforce"}}
	var denyB []string // what subnet B's ACL, not the function's, holds
	checkState := func(step string, denies []string, cmds int) {
		t.Helper()
		if got := w.denies(t, w.subnetA); !slices.Equal(got, denies) {
			t.Errorf("%s: subnet A denies %v, want %v", step, got, denies)
		}
		if got := w.denies(t, w.subnetB); !slices.Equal(got, denyB) {
			t.Errorf("%s: subnet B denies %v, want %v", step, got, denyB)
		}
		cs := w.commands(t)
		if len(cs) != cmds {
			t.Fatalf("%s: %d SSM commands %+v, want %d", step, len(cs), cs, cmds)
		}
		var ttls []string
		for _, c := range cs {
			ttls = append(ttls, c.Params["ttl"])
			c.Params["ttl"] = wantHost.Params["ttl"]
			if fmt.Sprint(c) != fmt.Sprint(wantHost) {
				t.Errorf("%s: SSM command %+v, want %+v", step, c, wantHost)
			}
		}
		// One command per alarm state change; the same sources again
		// within the repeat window: the TTL doubles each time.
		slices.Sort(ttls)
		if want := []string{"1h", "2h", "4h"}[:cmds]; !slices.Equal(ttls, want) {
			t.Errorf("%s: SSM command TTLs %v, want %v", step, ttls, want)
		}
		for i, ids := range cnt.sentInstances(t) {
			if !slices.Equal(ids, []string{w.inst[2]}) {
				t.Errorf("%s: SendCommand %d to %v, want only %s", step, i, ids, w.inst[2])
			}
		}
	}

	t1 := w.now
	// EventBridge "CloudWatch Alarm State Change" into ALARM.
	r := decode(t, rt.invoke(t, w.eventBridge(t, t1, "ALARM")))
	for target, want := range map[string]string{
		"203.0.113.10/32": "block/vpc", "203.0.113.20/32": "block/host", "2001:db8::20/128": "block/host", "198.51.100.5/32": "refuse/none",
	} {
		if got := r.action(target); got != want {
			t.Errorf("eventbridge: %s decided %q, want %q", target, got, want)
		}
	}
	if r.action("192.0.2.33/32") != "" {
		t.Errorf("eventbridge: a source under max_retry was decided: %s", r.action("192.0.2.33/32"))
	}
	checkState("eventbridge", []string{"203.0.113.10/32"}, 1)
	// The ACL's tag says why, and who: the alarm, its state change, what
	// the source did; origin lambda.
	wantReason := "alarm " + alarmName + " at " + t1.UTC().Format("2006-01-02T15:04:05.000Z") + ": sshd 12 failures in "
	if bs := w.blocks(t, w.subnetA); len(bs) != 1 || bs[0].Origin != "lambda" || !strings.HasPrefix(bs[0].Reason, wantReason) {
		t.Errorf("eventbridge: subnet A blocks %+v, want one of origin lambda with reason %q...", bs, wantReason)
	}

	// The same event again (at-least-once delivery): nothing new.
	r = decode(t, rt.invoke(t, w.eventBridge(t, t1, "ALARM")))
	// The policy may refresh the existing entry's expiry; it must not add one.
	if got := r.action("203.0.113.10/32"); got != "block/vpc" && !strings.HasPrefix(got, "skip/") {
		t.Errorf("redelivery: 203.0.113.10 decided %q, want a refresh or a skip", got)
	}
	if len(r.Host) != 1 || len(r.Host[0].Sent) != 1 || !r.Host[0].Sent[0].Duplicate {
		t.Errorf("redelivery: host commands %+v, want the earlier one marked duplicate", r.Host)
	}
	checkState("eventbridge redelivered", []string{"203.0.113.10/32"}, 1)

	// The same state change delivered by SNS and by the alarm action: the
	// same key, so nothing new either.
	decode(t, rt.invoke(t, w.sns(t, t1)))
	checkState("sns, same state change", []string{"203.0.113.10/32"}, 1)
	decode(t, rt.invoke(t, w.alarmAction(t, t1)))
	checkState("alarm action, same state change", []string{"203.0.113.10/32"}, 1)

	// A new state change by SNS: the host block is sent again (it refreshes
	// the TTL on the instance); the VPC block is already there.
	// Both sources are repeat offenders now: the TTL doubles (DESIGN rule
	// 7), on the host (counted from the SSM command history) and in the ACL
	// (counted from the VPC block's metadata, which names t1's event).
	t2 := t1.Add(time.Second)
	r = decode(t, rt.invoke(t, w.sns(t, t2)))
	checkState("sns", []string{"203.0.113.10/32"}, 2)
	checkRepeat := func(step string, r response, targets []string, repeat int, ttl time.Duration) {
		t.Helper()
		for _, target := range targets {
			d, _ := r.decision(target)
			if d.TTLSeconds != int64(ttl/time.Second) || !slices.ContainsFunc(d.Reasons, func(s string) bool { return strings.HasPrefix(s, fmt.Sprintf("repeat offender: %d prior", repeat)) }) {
				t.Errorf("%s: %s ttl %ds reasons %q, want %s as a repeat offender (%d)", step, target, d.TTLSeconds, d.Reasons, ttl, repeat)
			}
		}
	}
	checkRepeat("sns", r, []string{"203.0.113.10/32", "203.0.113.20/32", "2001:db8::20/128"}, 1, 2*time.Hour)
	// The extended entry's tag names the latest block, so a third alarm
	// escalates from "repeat 1".
	wantReason2 := "alarm " + alarmName + " at " + t2.UTC().Format("2006-01-02T15:04:05.000Z") + ", repeat 1: sshd 12 failures in "
	if bs := w.blocks(t, w.subnetA); len(bs) != 1 || bs[0].Origin != "lambda" || !strings.HasPrefix(bs[0].Reason, wantReason2) || bs[0].ExpiresAt.Before(t2.Add(2*time.Hour-time.Minute)) {
		t.Errorf("sns: subnet A blocks %+v, want the entry renamed %q... and extended to %s", bs, wantReason2, t2.Add(2*time.Hour))
	}
	// ... and by the alarm action (no evaluation periods in the event): the
	// host sources a third time.
	t3 := t2.Add(time.Second)
	r = decode(t, rt.invoke(t, w.alarmAction(t, t3)))
	checkState("alarm action", []string{"203.0.113.10/32"}, 3)
	checkRepeat("alarm action", r, []string{"203.0.113.10/32", "203.0.113.20/32", "2001:db8::20/128"}, 2, 4*time.Hour)
	// Its redelivery counts no offence of its own: nothing doubles again.
	r = decode(t, rt.invoke(t, w.alarmAction(t, t3)))
	checkState("alarm action redelivered", []string{"203.0.113.10/32"}, 3)
	checkRepeat("alarm action redelivered", r, []string{"203.0.113.20/32", "2001:db8::20/128"}, 2, 4*time.Hour)

	// OK and INSUFFICIENT_DATA are ignored.
	for _, st := range []string{"OK", "INSUFFICIENT_DATA"} {
		r = decode(t, rt.invoke(t, w.eventBridge(t, t2.Add(time.Minute), st)))
		if r.Ignored == "" || len(r.Decisions) != 0 {
			t.Errorf("%s: response %+v, want ignored", st, r)
		}
	}
	checkState("ok", []string{"203.0.113.10/32"}, 3)

	// Malformed, truncated and unknown events: an error, nothing changes.
	eb := string(w.eventBridge(t, t2.Add(2*time.Minute), "ALARM"))
	for _, bad := range []string{eb[:len(eb)/2], `{"hello":"world"}`, `{"action":"block","targets":["1.2.3.4; reboot"],"subnet":"` + w.subnetA + `"}`} {
		res := rt.invoke(t, []byte(bad))
		if res.ok || !strings.Contains(string(res.body), "parse event") || !strings.Contains(string(res.body), `"errorType"`) {
			t.Errorf("bad event %.40q: ok=%v body %s, want an error response", bad, res.ok, res.body)
		}
	}
	checkState("bad events", []string{"203.0.113.10/32"}, 3)

	// Manual: a whitelisted source is refused and nothing changes.
	r = decode(t, rt.invoke(t, []byte(`{"action":"block","targets":["198.51.100.7"],"subnet":"`+w.subnetA+`","scope":"vpc"}`)))
	if got := r.action("198.51.100.7/32"); got != "refuse/none" {
		t.Errorf("manual whitelisted: %q, want refuse/none", got)
	}
	// Manual plan changes nothing.
	r = decode(t, rt.invoke(t, []byte(`{"action":"plan","targets":["203.0.113.99"],"instances":["`+w.inst[0]+`","`+w.inst[1]+`"]}`)))
	if got := r.action("203.0.113.99/32"); got != "block/vpc" {
		t.Errorf("manual plan: %q, want block/vpc", got)
	}
	checkState("manual refused and plan", []string{"203.0.113.10/32"}, 3)

	// Manual VPC block with a 1s TTL, then the scheduled sweep removes it.
	r = decode(t, rt.invoke(t, []byte(`{"action":"block","targets":["192.0.2.0/24"],"subnet":"`+w.subnetA+`","scope":"vpc","ttl":"1s","reason":"manual test"}`)))
	if got := r.action("192.0.2.0/24"); got != "block/vpc" {
		t.Errorf("manual vpc block: %q, want block/vpc (%+v)", got, r.Decisions)
	}
	checkState("manual vpc block", []string{"192.0.2.0/24", "203.0.113.10/32"}, 3)
	// Subnet B's ACL is not the function's (BANSHEE_NACL_IDS names only
	// subnet A's): a manual VPC block there is refused, and an expired
	// banshee block that someone else wrote there survives the sweep.
	r = decode(t, rt.invoke(t, []byte(`{"action":"block","targets":["192.0.2.77"],"subnet":"`+w.subnetB+`","scope":"vpc"}`)))
	if got := r.action("192.0.2.77/32"); got != "refuse/none" {
		t.Errorf("manual vpc block in an ACL the function does not manage: %q, want refuse/none (%+v)", got, r.Decisions)
	}
	w.foreignBlock(t, w.subnetB, "198.18.77.0/24", time.Second)
	denyB = []string{"198.18.77.0/24"}
	checkState("foreign block", []string{"192.0.2.0/24", "203.0.113.10/32"}, 3)
	time.Sleep(2 * time.Second)
	// Someone deletes 203.0.113.10's deny before its expiry: the scheduled
	// run re-creates it from its tags, at its rule number.
	rule := w.deleteDeny(t, w.naclA, "203.0.113.10/32")
	r = decode(t, rt.invoke(t, mustJSON(t, fixture(t, "scheduled-event.json"))))
	checkState("scheduled sweep", []string{"203.0.113.10/32"}, 3)
	if r.Sweep == nil || len(r.Sweep.Removed) != 1 || r.Sweep.Removed[0].NACLID != w.naclA {
		t.Errorf("scheduled sweep removed %+v, want only 192.0.2.0/24 from %s", r.Sweep, w.naclA)
	}
	if len(r.Recreated) != 1 || r.Recreated[0].Target != "203.0.113.10/32" || r.Recreated[0].RuleNumber != rule {
		t.Errorf("scheduled sweep re-created %+v, want 203.0.113.10/32 at rule %d", r.Recreated, rule)
	}

	// Manual unblock.
	decode(t, rt.invoke(t, []byte(`{"action":"unblock","targets":["203.0.113.10"],"subnet":"`+w.subnetA+`"}`)))
	checkState("manual unblock", nil, 3)

	// Structured logs and EMF lines came out.
	o := out.String()
	for _, want := range []string{`"msg":"decision"`, `"CloudWatchMetrics"`, `"NACLFreeSlots"`, `"Refusals"`, `"Scope":"vpc"`, `"Scope":"host"`} {
		if !strings.Contains(o, want) {
			t.Errorf("function output lacks %s", want)
		}
	}
}

func TestInitError(t *testing.T) {
	bin := buildBootstrap(t)
	rt := newRuntimeAPI(t)
	env := awsEnv("http://127.0.0.1:1")
	env["BANSHEE_SSM_DOCUMENT"] = document
	env["BANSHEE_INSTANCE_TAG"] = "no-equals-sign"
	startBootstrap(t, bin, rt, env)
	select {
	case body := <-rt.initErr:
		if !strings.Contains(body, "instance tag") || !strings.Contains(body, "Runtime.ConfigError") {
			t.Errorf("init error %s, want one naming the instance tag", body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no init error within 30s")
	}
}
