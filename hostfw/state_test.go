package hostfw

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func newTestStore(t *testing.T) *store {
	t.Helper()
	s := &store{dir: t.TempDir()}
	if err := s.mkdir(); err != nil {
		t.Fatal(err)
	}
	return s
}

func entryN(i int) Entry {
	return Entry{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), 32), TTL: time.Hour, Origin: "cli", Reason: fmt.Sprintf("r%d", i)}
}

func prefixesOf(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Prefix.String())
	}
	return out
}

// TestJournalTornRecordIsCutBeforeAppend is the crash of the issue: a block
// killed mid-write leaves a torn record, the next block must not glue its
// first record onto it, and nothing acknowledged may be lost.
func TestJournalTornRecordIsCutBeforeAppend(t *testing.T) {
	s := newTestStore(t)
	now := time.Unix(1_800_000_000, 0)
	if err := s.journalBlocks(now, []Entry{entryN(1), entryN(2)}); err != nil {
		t.Fatal(err)
	}
	whole := appendRecord(nil, entryN(3), now)
	f, err := os.OpenFile(s.path(journalFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(whole[:len(whole)/2]); err != nil { // killed here
		t.Fatal(err)
	}
	f.Close()
	if err := s.journalBlocks(now, []Entry{entryN(4)}); err != nil {
		t.Fatal(err)
	}
	if err := s.journalUnblocks([]netip.Prefix{entryN(1).Prefix}); err != nil {
		t.Fatal(err)
	}
	ld, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(prefixesOf(ld.entries), " "); got != "10.1.0.2/32 10.1.0.4/32" || len(ld.damaged) != 0 || ld.records != 4 {
		t.Fatalf("after a torn record and two more appends: entries %s, damage %v, %d records; want 10.1.0.2/32 10.1.0.4/32, none, 4", got, ld.damaged, ld.records)
	}
}

// fullDisk is a journal file on a disk with room for budget more bytes: a
// write beyond it stores what fits and fails with ENOSPC, like write(2).
type fullDisk struct {
	*os.File
	budget int
}

func (d *fullDisk) Write(p []byte) (int, error) {
	if len(p) <= d.budget {
		d.budget -= len(p)
		return d.File.Write(p)
	}
	n, err := d.File.Write(p[:d.budget])
	d.budget = 0
	if err != nil {
		return n, err
	}
	return n, &os.PathError{Op: "write", Path: d.Name(), Err: syscall.ENOSPC}
}

func TestJournalFullDiskRecordsNothingHalf(t *testing.T) {
	s := newTestStore(t)
	now := time.Unix(1_800_000_000, 0)
	if err := s.journalBlocks(now, []Entry{entryN(1)}); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(s.path(journalFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, budget := range []int{0, 1, 30, 100} {
		s.open = func(path string) (appendFile, error) {
			f, err := openAppend(path)
			if err != nil {
				return nil, err
			}
			return &fullDisk{File: f.(*os.File), budget: budget}, nil
		}
		err := s.journalBlocks(now, []Entry{entryN(2), entryN(3), entryN(4)})
		if err == nil || !strings.Contains(err.Error(), "no space left") || !strings.Contains(err.Error(), "nothing recorded") {
			t.Fatalf("budget %d: journaling on a full disk: %v; want an ENOSPC error saying nothing was recorded", budget, err)
		}
		after, err := os.ReadFile(s.path(journalFile))
		if err != nil {
			t.Fatal(err)
		}
		if string(after) != string(before) {
			t.Fatalf("budget %d: a failed append left %q after %q", budget, after[len(before):], before)
		}
	}
	// Room again: the next append is whole and readable.
	s.open = nil
	if err := s.journalBlocks(now, []Entry{entryN(5)}); err != nil {
		t.Fatal(err)
	}
	ld, err := s.load()
	if err != nil || strings.Join(prefixesOf(ld.entries), " ") != "10.1.0.1/32 10.1.0.5/32" || len(ld.damaged) != 0 {
		t.Fatalf("after the disk has room again: %v %v %v", prefixesOf(ld.entries), ld.damaged, err)
	}
}

func TestJournalDamagedRecordIsSkippedWithItsLine(t *testing.T) {
	s := newTestStore(t)
	now := time.Unix(1_800_000_000, 0)
	if err := s.journalBlocks(now, []Entry{entryN(1), entryN(2), entryN(3)}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(s.path(journalFile))
	lines := strings.SplitAfter(string(data), "\n")
	lines[1] = strings.Replace(lines[1], "10.1.0.2", "10.1.0.7", 1) // a flipped bit on disk
	legacy := "+ 0 192.0.2.9/32 \"cli\" \"written before records had sums\"\n"
	if err := os.WriteFile(s.path(journalFile), []byte(strings.Join(lines, "")+"garbage\n"+legacy), 0o600); err != nil {
		t.Fatal(err)
	}
	ld, err := s.load()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(prefixesOf(ld.entries), " "); got != "10.1.0.1/32 10.1.0.3/32 192.0.2.9/32" {
		t.Errorf("entries %s: want the intact and the legacy records", got)
	}
	if len(ld.damaged) != 2 || ld.damaged[0].Line != 2 || !strings.Contains(ld.damaged[0].Problem, "checksum mismatch") || ld.damaged[1].Line != 4 {
		t.Errorf("damage %v: want line 2 (checksum) and line 4", ld.damaged)
	}
}

func TestStateDirUnsafeIsRefused(t *testing.T) {
	s := newTestStore(t)
	now := time.Unix(1_800_000_000, 0)
	if err := s.journalBlocks(now, []Entry{entryN(1)}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(s.dir, "hostfw"), 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := s.load(); err == nil || !strings.Contains(err.Error(), "world-writable") {
		t.Errorf("world-writable state dir: %v", err)
	}
	if err := os.Chmod(filepath.Join(s.dir, "hostfw"), 0o700); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(other, appendRecord(nil, Entry{Prefix: netip.MustParsePrefix("0.0.0.0/1")}, now), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.path(journalFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, s.path(journalFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.load(); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("symlinked journal: %v", err)
	}
	if err := s.journalBlocks(now, []Entry{entryN(2)}); err == nil {
		t.Errorf("appending through a symlinked journal succeeded")
	}
	if data, _ := os.ReadFile(other); strings.Contains(string(data), "10.1.0.2") {
		t.Errorf("the append followed the link: %q", data)
	}
}
