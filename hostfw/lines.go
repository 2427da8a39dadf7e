package hostfw

import (
	"bytes"
	"io"
)

// pipeAtomic is PIPE_BUF on Linux: a write of at most this many bytes to a
// pipe is atomic, all or nothing, even when the writer is killed.
const pipeAtomic = 4096

// lineReader hands its data to os/exec's copy into a child's stdin in
// pieces that end at a newline and fit pipeAtomic, for the same reason.
type lineReader struct{ b []byte }

func (r *lineReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.b), pipeAtomic)
	if n < len(r.b) {
		if i := bytes.LastIndexByte(r.b[:n], '\n'); i >= 0 {
			n = i + 1
		} else if i := bytes.IndexByte(r.b[:min(len(p), len(r.b))], '\n'); i >= 0 {
			n = i + 1 // one line longer than PIPE_BUF goes alone
		} else {
			n = min(len(p), len(r.b))
		}
	}
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}
