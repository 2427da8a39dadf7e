package engine

import (
	"os"
	"path/filepath"
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
