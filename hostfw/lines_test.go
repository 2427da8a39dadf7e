package hostfw

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// recordingPipe keeps every write as the pipe would receive it.
type recordingPipe struct {
	writes [][]byte
}

func (p *recordingPipe) Write(b []byte) (int, error) {
	p.writes = append(p.writes, bytes.Clone(b))
	return len(b), nil
}

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
