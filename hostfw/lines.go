package hostfw

import (
	"bytes"
	"io"
)

// pipeAtomic is PIPE_BUF on Linux: a write of at most this many bytes to a
// pipe is atomic, all or nothing, even when the writer is killed.
const pipeAtomic = 4096

// wholeLines feeds a kernel tool's input so that it only ever sees complete
// lines: each write to the pipe is at most pipeAtomic bytes and ends at a
// newline, and a line not yet complete is held back until it is. When banshee
// dies mid-feed (kill -9), the tool reads end of input after a complete line
// and never parses half of one ("add banshee4 11.1.1" for 11.1.1.10).
type wholeLines struct {
	w       io.WriteCloser
	pending []byte // the start of a line whose newline has not come yet
}

func (l *wholeLines) Write(p []byte) (int, error) {
	n := len(p)
	if len(l.pending) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.pending = append(l.pending, p...)
			return n, nil
		}
		l.pending = append(l.pending, p[:i+1]...)
		p = p[i+1:]
		if err := writeLines(l.w, l.pending); err != nil {
			return 0, err
		}
		l.pending = l.pending[:0]
	}
	end := bytes.LastIndexByte(p, '\n') + 1
	if err := writeLines(l.w, p[:end]); err != nil {
		return 0, err
	}
	l.pending = append(l.pending, p[end:]...)
	return n, nil
}

// Close writes what is held back (the caller's explicit last line) and
// closes the pipe.
func (l *wholeLines) Close() error {
	var err error
	if len(l.pending) > 0 {
		_, err = l.w.Write(l.pending)
		l.pending = nil
	}
	if cerr := l.w.Close(); err == nil {
		err = cerr
	}
	return err
}

// writeLines writes complete lines in pieces of at most pipeAtomic bytes
// that each end at a newline (a single line longer than that goes alone).
func writeLines(w io.Writer, b []byte) error {
	for len(b) > 0 {
		n := len(b)
		if n > pipeAtomic {
			n = bytes.LastIndexByte(b[:pipeAtomic], '\n') + 1
			if n == 0 {
				n = bytes.IndexByte(b, '\n') + 1
				if n == 0 {
					n = len(b)
				}
			}
		}
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

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
