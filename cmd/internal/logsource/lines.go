package logsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxLine is the longest line handed on; longer lines are dropped
// and counted, never matched: a cut line could end anywhere in a field the
// remote side wrote (an 18 KiB user name with "rip=ADDR" at the cut), and
// no format detect reads is that long.
const DefaultMaxLine = 16 << 10

// splitter turns chunks of bytes into lines, keeping a partial last line
// until its newline arrives.
type splitter struct {
	max     int
	partial []byte
	long    bool // the partial line is over the limit: it is dropped
	cut     int  // lines dropped so far
	onLong  func()
}

func (s *splitter) dropped() {
	s.cut++
	if s.onLong != nil {
		s.onLong()
	}
}

func (s *splitter) feed(data []byte, fn func([]byte)) {
	for len(data) > 0 {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			s.keep(data)
			return
		}
		line := data[:nl]
		data = data[nl+1:]
		if len(s.partial) > 0 || s.long {
			s.keep(line)
			if !s.long {
				fn(trimCR(s.partial))
			}
			s.partial, s.long = s.partial[:0], false
			continue
		}
		if len(line) > s.max {
			s.dropped()
			continue
		}
		fn(trimCR(line))
	}
}

func (s *splitter) keep(b []byte) {
	if s.long {
		return
	}
	if len(s.partial)+len(b) > s.max {
		s.dropped()
		s.partial, s.long = s.partial[:0], true
		return
	}
	s.partial = append(s.partial, b...)
}

// flush hands on a last line that has no newline.
func (s *splitter) flush(fn func([]byte)) {
	if len(s.partial) > 0 && !s.long {
		fn(trimCR(s.partial))
	}
	s.partial, s.long = s.partial[:0], false
}

func trimCR(b []byte) []byte {
	if n := len(b); n > 0 && b[n-1] == '\r' {
		return b[:n-1]
	}
	return b
}

// ReadLines reads r to its end and calls fn for every line, the last one
// even without a newline. It returns the number of lines dropped for being
// longer than DefaultMaxLine.
func ReadLines(r io.Reader, fn func([]byte)) (cut int, err error) {
	s := splitter{max: DefaultMaxLine}
	buf := make([]byte, 256<<10)
	for {
		n, err := r.Read(buf)
		s.feed(buf[:n], fn)
		if errors.Is(err, io.EOF) {
			s.flush(fn)
			return s.cut, nil
		}
		if err != nil {
			return s.cut, fmt.Errorf("reading log lines: %w", err)
		}
	}
}
