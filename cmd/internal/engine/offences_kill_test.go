package engine

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/banshee-project/banshee/policy"
)

// offenceWriterEnv makes the test binary a writer of offences (see
// TestOffencesSurviveKill9) instead of running the tests.
const offenceWriterEnv = "BANSHEE_TEST_OFFENCE_WRITER"

func init() {
	path := os.Getenv(offenceWriterEnv)
	if path == "" {
		return
	}
	f := FileOffences{Path: path}
	compactAt = 4 << 10 // compact every few dozen appends: kills land in compactions too
	now := time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC)
	os.Stdout.WriteString("ready\n")
	for i := 0; i < 1_000_000; i++ { // killed long before
		var batch []policy.Offence
		for j := range 1 + i%7 {
			batch = append(batch, policy.Offence{Source: policy.Canonical(pfx(fmt.Sprintf("198.51.%d.%d/32", i%250, j))), At: now.Add(time.Duration(i) * time.Second)})
		}
		// A horizon that drops the oldest: compactions rewrite the record.
		if err := f.Add(batch, now.Add(time.Duration(i-20)*time.Second)); err != nil {
			os.Exit(3)
		}
	}
	os.Exit(0)
}

// TestOffencesSurviveKill9 kills a process appending (and now and then
// compacting) the offences record at moments spread over its work, again
// and again on the same record: every time, the record reads without an
// error, holds only whole offences, and the next writer appends to it.
func TestOffencesSurviveKill9(t *testing.T) {
	path := filepath.Join(t.TempDir(), "offences.json")
	for round := range 12 {
		cmd := exec.Command(os.Args[0], "-test.run", "^$")
		cmd.Env = append(os.Environ(), offenceWriterEnv+"="+path)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 6)
		if _, err := out.Read(buf); err != nil {
			t.Fatalf("round %d: the writer did not start: %v", round, err)
		}
		// Kill at a different point of the work each round.
		time.Sleep(time.Duration(1+round*7%40) * time.Millisecond)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		if st := cmd.ProcessState; st != nil && st.Exited() && st.ExitCode() == 3 {
			t.Fatalf("round %d: the writer failed before it was killed", round)
		}
		got, err := (FileOffences{Path: path}).Load()
		if err != nil {
			t.Fatalf("round %d: reading the record after kill -9: %v", round, err)
		}
		for _, o := range got {
			if !o.Source.IsValid() || o.At.IsZero() {
				t.Fatalf("round %d: a damaged offence was read: %+v", round, o)
			}
		}
		t.Logf("round %d: %d offences, record %s", round, len(got), sizeOf(path))
	}
}

func sizeOf(path string) string {
	st, err := os.Stat(path)
	if err != nil {
		return err.Error()
	}
	return strconv.FormatInt(st.Size(), 10) + " bytes"
}
