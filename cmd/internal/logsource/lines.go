package logsource

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// DefaultMaxLine is the longest line handed on whole; longer lines are cut
// to this length (log lines that long are not the formats detect reads).
const DefaultMaxLine = 16 << 10

// splitter turns chunks of bytes into lines, keeping a partial last line
// until its newline arrives.
type splitter struct {
	max     int
	partial []byte
	long    bool // the partial line was already cut
	cut     int  // lines cut so far
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
			fn(trimCR(s.partial))
			s.partial, s.long = s.partial[:0], false
			continue
		}
		if len(line) > s.max {
			line = line[:s.max]
			s.cut++
		}
		fn(trimCR(line))
	}
}

func (s *splitter) keep(b []byte) {
	room := s.max - len(s.partial)
	if len(b) > room {
		if !s.long {
			s.cut++
		}
		b = b[:max(room, 0)]
		s.long = true
	}
	s.partial = append(s.partial, b...)
}

// flush hands on a last line that has no newline.
func (s *splitter) flush(fn func([]byte)) {
	if len(s.partial) > 0 {
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
// even without a newline. It returns the number of lines cut to
// DefaultMaxLine.
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
