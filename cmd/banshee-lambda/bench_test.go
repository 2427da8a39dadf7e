package main

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/banshee-project/banshee/awsnacl/mototest"
)

// BenchmarkBootstrapSize reports the size of the stripped bootstrap and of
// its deployment zip (target: zip under 10 MB).
func BenchmarkBootstrapSize(b *testing.B) {
	bin := buildBootstrap(b)
	raw, err := os.ReadFile(bin)
	if err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	for range b.N {
		buf.Reset()
		zw := zip.NewWriter(&buf)
		h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(w, bytes.NewReader(raw)); err != nil {
			b.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(raw))/1e6, "bootstrap-MB")
	b.ReportMetric(float64(buf.Len())/1e6, "zip-MB")
	if buf.Len() >= 10e6 {
		b.Errorf("zip is %d bytes, target under 10 MB", buf.Len())
	}
}

// BenchmarkBootstrapInit measures the bootstrap's init time: from process
// start to its first request for the next invocation, the median of at
// least 9 starts (target: under 50 ms).
func BenchmarkBootstrapInit(b *testing.B) {
	bin := buildBootstrap(b)
	env := awsEnv("http://127.0.0.1:1") // init makes no AWS call
	env["BANSHEE_CONFIG_PARAMETER"] = configParam
	env["BANSHEE_SSM_DOCUMENT"] = document
	env["BANSHEE_INSTANCE_TAG"] = instanceTag
	runs := max(b.N, 9)
	var ds []time.Duration
	for range runs {
		rt := newRuntimeAPI(b)
		start := time.Now()
		cmd, out := startBootstrap(b, bin, rt, env)
		select {
		case at := <-rt.first:
			ds = append(ds, at.Sub(start))
		case <-time.After(30 * time.Second):
			b.Fatalf("no next request within 30s; output:\n%s", out.String())
		}
		_ = cmd.Process.Kill()
	}
	slices.Sort(ds)
	med := ds[len(ds)/2]
	b.ReportMetric(float64(med.Microseconds())/1000, "init-ms-median")
	b.ReportMetric(float64(ds[0].Microseconds())/1000, "init-ms-min")
	b.ReportMetric(float64(ds[len(ds)-1].Microseconds())/1000, "init-ms-max")
}

// BenchmarkAlarmCalls counts the AWS API calls the function makes for one
// alarm with 10 offenders (6 reaching two instances of one subnet: VPC
// scope; 4 reaching one instance: host scope), cold (the config parameter
// is read too). Target: at most 6 + 2 per offender.
func BenchmarkAlarmCalls(b *testing.B) {
	if !mototest.Available() {
		b.Skip("moto_server not on PATH: install moto[server] to count AWS calls")
	}
	bin := buildBootstrap(b)
	offenders := map[string]map[int]int{}
	for i := range 6 {
		offenders[fmt.Sprintf("203.0.113.%d", 100+i)] = map[int]int{0: 5, 1: 5}
	}
	for i := range 4 {
		offenders[fmt.Sprintf("198.18.0.%d", 10+i)] = map[int]int{2: 6}
	}
	const n = 10
	total := 0
	for range b.N {
		w := newWorld(b, offenders)
		cnt := newCounter(b, w.moto)
		rt := newRuntimeAPI(b)
		startBootstrap(b, bin, rt, w.env(cnt.URL))
		res := rt.invoke(b, w.eventBridge(b, w.now, "ALARM"))
		if !res.ok {
			b.Fatalf("alarm failed: %s", res.body)
		}
		counts, calls := cnt.snapshot()
		if got := len(w.denies(b, w.subnetA)); got != 6 {
			b.Errorf("%d VPC denies, want 6", got)
		}
		if cs := w.commands(b); len(cs) != 1 {
			b.Errorf("%d SSM commands, want 1", len(cs))
		}
		b.Logf("AWS calls for one alarm with %d offenders: %d %v", n, calls, counts)
		total = calls
	}
	b.ReportMetric(float64(total), "aws-calls/alarm")
	b.ReportMetric(float64(6+2*n), "budget-calls")
	if total > 6+2*n {
		b.Errorf("%d AWS calls for %d offenders, budget %d", total, n, 6+2*n)
	}
}
