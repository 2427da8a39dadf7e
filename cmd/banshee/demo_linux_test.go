package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/awsnacl/mototest"
	"github.com/banshee-project/banshee/hostfw/nstest"
)

// runDemo runs cmd/banshee/demo/demo.sh (what make demo runs) with the
// built banshee and env, and returns its output. It checks that the demo
// removed every namespace it made.
func runDemo(t *testing.T, env ...string) string {
	t.Helper()
	nstest.Require(t)
	bin := bansheeBin(t)
	before := demoNamespaces(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "demo/demo.sh", bin)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if after := demoNamespaces(t); after != before {
		t.Errorf("the demo left network namespaces behind: before %q, after %q", before, after)
	}
	return out.String()
}

func demoNamespaces(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatalf("ip netns list: %v", err)
	}
	var ns []string
	for l := range strings.SplitSeq(string(out), "\n") {
		if strings.HasPrefix(l, "bsh-demo-") {
			ns = append(ns, strings.Fields(l)[0])
		}
	}
	return strings.Join(ns, " ")
}

// inOrder checks that out holds every pattern, one after the other, and
// returns the submatches of each.
func inOrder(t *testing.T, out string, patterns ...string) [][]string {
	t.Helper()
	var subs [][]string
	rest := out
	for _, p := range patterns {
		re := regexp.MustCompile(p)
		loc := re.FindStringSubmatchIndex(rest)
		if loc == nil {
			t.Fatalf("demo output lacks %q after the previous step:\n%s", p, out)
		}
		var m []string
		for i := 0; i < len(loc); i += 2 {
			m = append(m, rest[loc[i]:loc[i+1]])
		}
		subs = append(subs, m)
		rest = rest[loc[1]:]
	}
	return subs
}

// TestDemoBothLayers runs the demo as make demo does: the attacker gets
// through, plan explains host vs VPC, the host block drops real packets,
// the VPC block writes a deny into the subnet's network ACL in moto, list
// shows both with the time left, unblock lifts them.
func TestDemoBothLayers(t *testing.T) {
	if !mototest.Available() {
		t.Skip("needs moto_server on PATH (Python moto 5, with boto3) for the VPC layer of the demo")
	}
	out := runDemo(t)
	m := inOrder(t, out,
		`network ACL (acl-[0-9a-f]+),`,
		`instances (i-[0-9a-f]+) and (i-[0-9a-f]+)`,
		`-> connected`,
		`\n10\.99\.1\.2 host block on (i-[0-9a-f]+) for 1h until `,
		`\n10\.99\.1\.2 vpc block (acl-[0-9a-f]+) rule 1 for 1h until .*reaches 2 instances`,
		`\n10\.99\.1\.2 host block for 2h until .*dropped on this host`,
		`-> connection failed \(dropped\)`,
		`\n10\.99\.1\.2 vpc block (acl-[0-9a-f]+) rule 1 for \S+ until `,
		`\nTARGET +SCOPE +WHERE +EXPIRES IN +ORIGIN +REASON`,
		`\n10\.99\.1\.2 +host +this host +[0-9hms]+ +cli +pop3 bruteforce`,
		`\n10\.99\.1\.2 +vpc +(acl-[0-9a-f]+) #1 +[0-9dhms]+ +cli +pop3 bruteforce on 2 instances\n`,
		`\n10\.99\.1\.2: unblocked \(this host, (acl-[0-9a-f]+) rule 1\)`,
		`-> connected`,
		`\nno active blocks\n`,
	)
	acl, i1 := m[0][1], m[1][1]
	if m[3][1] != i1 {
		t.Errorf("plan for one instance names %s, want %s", m[3][1], i1)
	}
	for _, k := range []int{4, 7, 10, 11} {
		if m[k][1] != acl {
			t.Errorf("step %d names network ACL %s, want the subnet's %s", k, m[k][1], acl)
		}
	}
}

// Without moto_server the demo says so and shows the host layer.
func TestDemoHostLayerOnly(t *testing.T) {
	out := runDemo(t, "MOTO_SERVER=banshee-no-such-moto-server")
	inOrder(t, out,
		`banshee-no-such-moto-server is not on PATH: showing the host layer only`,
		`-> connected`,
		`\n10\.99\.1\.2 host block for 2h until `,
		`-> connection failed \(dropped\)`,
		`\n10\.99\.1\.2 +host +this host +[0-9hms]+ +cli +pop3 bruteforce`,
		`\n10\.99\.1\.2: unblocked \(this host\)`,
		`-> connected`,
		`\nno active blocks\n`,
	)
	if strings.Contains(out, "vpc block") || strings.Contains(out, "banshee plan") {
		t.Errorf("host-only demo shows the VPC layer:\n%s", out)
	}
}
