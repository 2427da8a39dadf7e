package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/banshee-project/banshee/awsnacl/mototest"
)

// botnetOffenders: a /24 botnet of four sources (aggregate_min_sources is
// 3) on the two instances of subnet A, two sources of another /24 there
// (too few to aggregate), a third /24 whose three sources reach two sets
// of instances (two attacks of one alarm), and a single on subnet B's
// instance.
var botnetOffenders = map[string]map[int]int{
	"45.33.1.1":  {0: 9, 1: 9},
	"45.33.1.8":  {0: 6, 1: 6},
	"45.33.1.20": {0: 7, 1: 6},
	"45.33.1.77": {0: 6, 1: 8},
	"45.33.2.1":  {0: 6, 1: 6},
	"45.33.2.2":  {0: 6, 1: 7},
	"45.33.3.1":  {0: 6, 1: 6},
	"45.33.3.2":  {0: 6, 1: 6},
	"45.33.3.3":  {0: 5, 1: 5, 2: 5},
	"45.33.9.5":  {2: 7},
}

// TestBotnetOneDecision: one alarm whose offenders include a /24 botnet on
// two instances of one subnet ends with one /24 deny, not one /32 per
// source: the alarm's sources of one port, kind and instance set are one
// attack, so the placement of the edge sees them all at once. The other
// /24's two sources stay single entries. The third /24 is split over two
// attacks (its third source also reached subnet B's instance), and the
// later attack's placement merges the entries the earlier one planned:
// one /24 too. The single on subnet B is a host block on its instance,
// with the third /24's source that reached it.
func TestBotnetOneDecision(t *testing.T) {
	if !mototest.Available() {
		t.Skip("moto_server not on PATH: install moto[server] to run the Lambda end-to-end test")
	}
	bin := buildBootstrap(t)
	w := newWorld(t, botnetOffenders)
	rt := newRuntimeAPI(t)
	_, out := startBootstrap(t, bin, rt, w.env(w.moto))
	defer func() {
		if t.Failed() {
			t.Logf("function output:\n%s", out.String())
		}
	}()
	r := decode(t, rt.invoke(t, w.eventBridge(t, w.now, "ALARM")))
	want := []string{"45.33.1.0/24", "45.33.2.1/32", "45.33.2.2/32", "45.33.3.0/24"}
	if got := w.denies(t, w.subnetA); !slices.Equal(got, want) {
		t.Errorf("subnet A denies %v, want %v", got, want)
	}
	for _, botnet := range [][]string{{"45.33.1.1", "45.33.1.8", "45.33.1.20", "45.33.1.77"}, {"45.33.3.1", "45.33.3.2", "45.33.3.3"}} {
		rule := 0
		for _, src := range botnet {
			d, _ := r.decision(src + "/32")
			if d.Action+"/"+d.Scope != "block/vpc" || d.NACLID != w.naclA || (rule != 0 && d.RuleNumber != rule) {
				t.Errorf("%s: %s/%s %s rule %d (%q), want block/vpc in %s, one rule for its /24", src, d.Action, d.Scope, d.NACLID, d.RuleNumber, d.Reasons, w.naclA)
			}
			rule = d.RuleNumber
		}
	}
	if got := r.action("45.33.9.5/32"); got != "block/host" {
		t.Errorf("45.33.9.5 decided %q, want block/host", got)
	}
	bs := w.blocks(t, w.subnetA)
	if len(bs) != 4 {
		t.Fatalf("subnet A blocks %+v, want 4", bs)
	}
	for _, b := range bs {
		if b.Origin != "lambda" || !strings.HasPrefix(b.Reason, "alarm "+alarmName+" at ") {
			t.Errorf("block %s: origin %s reason %q, want the alarm's", b.Target, b.Origin, b.Reason)
		}
	}
	cs := w.commands(t)
	if len(cs) != 1 || cs[0].Params["targets"] != "45.33.3.3/32 45.33.9.5/32" {
		t.Errorf("SSM commands %+v, want one for 45.33.3.3 and 45.33.9.5 (on subnet B's instance)", cs)
	}

	// The same event again: nothing new at the edge.
	decode(t, rt.invoke(t, w.eventBridge(t, w.now, "ALARM")))
	if got := w.denies(t, w.subnetA); !slices.Equal(got, want) {
		t.Errorf("redelivery: subnet A denies %v, want %v", got, want)
	}
}
