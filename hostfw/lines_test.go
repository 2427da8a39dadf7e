package hostfw

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
)

// recordingPipe keeps every write as the pipe would receive it.
type recordingPipe struct {
	writes [][]byte
	closed bool
}

func (p *recordingPipe) Write(b []byte) (int, error) {
	p.writes = append(p.writes, bytes.Clone(b))
	return len(b), nil
}

func (p *recordingPipe) Close() error { p.closed = true; return nil }

func restoreInput(n int) []byte {
	var b []byte
	for i := range n {
		b = fmt.Appendf(b, "add banshee4 10.%d.%d.%d timeout %d comment \"cli: r\"\n", i>>16&255, i>>8&255, i&255, i)
	}
	b = append(b, strings.Repeat("x", 5000)...) // a line longer than PIPE_BUF
	return append(b, '\n')
}

// checkWrites asserts that every write but the last is whole lines within
// PIPE_BUF (or one long line alone), and that together they are the input.
func checkWrites(t *testing.T, writes [][]byte, want []byte) {
	t.Helper()
	var all []byte
	for i, w := range writes {
		if len(w) == 0 {
			continue
		}
		if w[len(w)-1] != '\n' {
			t.Fatalf("write %d ends mid-line: %q", i, w[max(0, len(w)-40):])
		}
		if len(w) > pipeAtomic && bytes.Count(w, []byte{'\n'}) > 1 {
			t.Fatalf("write %d: %d bytes of several lines, more than PIPE_BUF", i, len(w))
		}
		all = append(all, w...)
	}
	if !bytes.Equal(all, want) {
		t.Fatalf("the pipe got %d bytes, want the %d of the input", len(all), len(want))
	}
}

func TestWholeLinesNeverSplitsALine(t *testing.T) {
	in := restoreInput(3000)
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 20 {
		p := &recordingPipe{}
		w := &wholeLines{w: p}
		for rest := in; len(rest) > 0; {
			n := min(len(rest), 1+rng.IntN(70000))
			if trial == 0 {
				n = min(len(rest), 64<<10) // the bulk path's chunks
			}
			if _, err := w.Write(rest[:n]); err != nil {
				t.Fatal(err)
			}
			rest = rest[n:]
		}
		// Killed here: what reached the pipe is whole lines only.
		checkWrites(t, p.writes, in)
		if err := w.Close(); err != nil || !p.closed {
			t.Fatal("close", err)
		}
	}
	// An explicit last line without a newline still goes out at Close.
	p := &recordingPipe{}
	w := &wholeLines{w: p}
	_, _ = w.Write([]byte("a\nb"))
	_ = w.Close()
	if got := string(bytes.Join(p.writes, nil)); got != "a\nb" {
		t.Errorf("after close the pipe got %q", got)
	}
}

func TestLineReaderHandsOutWholeLines(t *testing.T) {
	in := restoreInput(3000)
	var p recordingPipe
	buf := make([]byte, 32<<10) // os/exec's copy buffer
	r := &lineReader{b: in}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			_, _ = p.Write(buf[:n])
		}
		if err == io.EOF {
			break
		}
	}
	checkWrites(t, p.writes, in)
}
