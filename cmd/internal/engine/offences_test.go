package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// TestOffencesRecordSurvivesACutLine: the record is appended a line per
// offence; a line cut by a crash or a full disk is skipped on reading and
// the next append starts on a line of its own; a record written whole as a
// JSON array (an older banshee) is read too; past compactAt the record is
// rewritten without the offences older than the horizon.
func TestOffencesRecordSurvivesACutLine(t *testing.T) {
	dir := t.TempDir()
	f := FileOffences{Path: filepath.Join(dir, "offences.json")}
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	src := policy.Canonical(pfx("198.51.100.7/32"))
	if err := os.WriteFile(f.Path, []byte(`[{"source":"198.51.100.7/32","at":"2026-12-02T01:00:00Z"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Add([]policy.Offence{{Source: src, At: now}}, now.Add(-time.Hour*24)); err != nil {
		t.Fatal(err)
	}
	// A crash cuts the next line in the middle.
	fh, err := os.OpenFile(f.Path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(`{"source":"198.51.1`); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	if err := f.Add([]policy.Offence{{Source: src, At: now.Add(time.Minute)}}, now.Add(-time.Hour*24)); err != nil {
		t.Fatal(err)
	}
	got, err := f.Load()
	if err != nil || len(got) != 3 {
		t.Fatalf("after a cut line: %v %v, want the array's offence and both appended ones", got, err)
	}
	// Compaction drops what is older than the horizon.
	var many []policy.Offence
	for i := range compactAt / 40 {
		many = append(many, policy.Offence{Source: src, At: now.Add(-48*time.Hour + time.Duration(i)*time.Second)})
	}
	if err := f.Add(many, now.Add(-72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := f.Add([]policy.Offence{{Source: src, At: now.Add(2 * time.Minute)}}, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	got, err = f.Load()
	if err != nil || len(got) != 3 {
		t.Errorf("after compaction: %d offences %v, want the 3 within the last hour", len(got), err)
	}
	if st, err := os.Stat(f.Path); err != nil || st.Size() > compactAt {
		t.Errorf("record size after compaction: %v %v", st.Size(), err)
	}
}

// offenceRecord is the record Add writes for n offences of distinct
// sources a second apart.
func offenceRecord(tb testing.TB, n int) []byte {
	tb.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	at := time.Date(2026, 12, 2, 3, 0, 0, 123456789, time.UTC)
	for i := range n {
		src := netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, byte(i >> 8), byte(i)}), 32)
		if i%3 == 0 {
			src = netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/64", i))
		}
		if err := enc.Encode(policy.Offence{Source: src, At: at.Add(time.Duration(i) * time.Second)}); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// jsonOffences reads a line record with encoding/json alone: what
// readOffences did before it read Add's own lines directly.
func jsonOffences(data []byte) []policy.Offence {
	var out []policy.Offence
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		var o policy.Offence
		if len(bytes.TrimSpace(line)) > 0 && json.Unmarshal(line, &o) == nil {
			out = append(out, o)
		}
	}
	return out
}

// TestOffenceLinesReadAsJSONReadsThem: every line Add writes is read
// directly, to the same offence encoding/json reads, zones and offsets
// included; other spellings of an offence still read through encoding/json.
func TestOffenceLinesReadAsJSONReadsThem(t *testing.T) {
	data := offenceRecord(t, 500)
	for line := range bytes.SplitSeq(bytes.TrimSpace(data), []byte("\n")) {
		var o policy.Offence
		if !parseOffenceLine(line, &o) {
			t.Fatalf("Add's own line not read directly: %s", line)
		}
	}
	extra := []string{
		`{"at":"2026-12-02T03:00:00Z","source":"198.51.100.7/32"}`,      // fields swapped
		`{"source":"198.51.100.7/32","at":"2026-12-02T05:00:00+02:00"}`, // an offset
		`{ "source": "198.51.100.0/24", "at": "2026-12-02T03:00:00Z" }`, // spaces
	}
	data = append(data, []byte(strings.Join(extra, "\n")+"\n")...)
	path := filepath.Join(t.TempDir(), "offences.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := readOffences(path)
	if err != nil {
		t.Fatal(err)
	}
	want := jsonOffences(data)
	if len(got) != 503 || len(got) != len(want) {
		t.Fatalf("read %d offences, encoding/json reads %d, want 503", len(got), len(want))
	}
	for i := range got {
		if got[i].Source != want[i].Source || !got[i].At.Equal(want[i].At) {
			t.Errorf("offence %d: read %v, encoding/json reads %v", i, got[i], want[i])
		}
	}
}

// FuzzOffenceLine: a line read directly is a line encoding/json reads to
// the same offence; the direct reading never accepts what json refuses.
func FuzzOffenceLine(f *testing.F) {
	for line := range bytes.SplitSeq(bytes.TrimSpace(offenceRecord(f, 6)), []byte("\n")) {
		f.Add(line)
	}
	f.Add([]byte(`{"source":"198.51.100.7/32","at":"2026-12-02T03:00:00Z"}`))
	f.Add([]byte(`{"source":"198.51.100.7/32","at":"2026-12-02T03:00:00Z","x":"1"}`))
	f.Add([]byte(`{"source":"198.51.100.7/32","at":"2026-12-02T03:00:00\u005a"}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var direct, viaJSON policy.Offence
		if !parseOffenceLine(line, &direct) {
			return
		}
		if err := json.Unmarshal(line, &viaJSON); err != nil {
			t.Fatalf("read directly as %v, encoding/json refuses it: %v", direct, err)
		}
		if direct.Source != viaJSON.Source || !direct.At.Equal(viaJSON.At) {
			t.Fatalf("read directly as %v, encoding/json reads %v", direct, viaJSON)
		}
	})
}

// BenchmarkOffencesLoad: reading a record of 4,000 offences (about the
// size at which Add compacts), as every single block does before it
// decides, next to reading the same record with encoding/json alone;
// x-json is the ratio of the two.
func BenchmarkOffencesLoad(b *testing.B) {
	data := offenceRecord(b, 4000)
	path := filepath.Join(b.TempDir(), "offences.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		b.Fatal(err)
	}
	var ours, raw time.Duration
	for b.Loop() {
		t0 := time.Now()
		got, err := readOffences(path)
		if err != nil || len(got) != 4000 {
			b.Fatalf("read %d offences: %v", len(got), err)
		}
		t1 := time.Now()
		again, err := os.ReadFile(path)
		if err != nil || len(jsonOffences(again)) != 4000 {
			b.Fatal("encoding/json did not read the record", err)
		}
		ours, raw = ours+t1.Sub(t0), raw+time.Since(t1)
	}
	b.ReportMetric(float64(ours.Microseconds())/float64(b.N), "ours-us")
	b.ReportMetric(float64(raw.Microseconds())/float64(b.N), "json-us")
	b.ReportMetric(float64(ours)/float64(raw), "x-json")
}
