package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
)

// ReadSnapshot reads a snapshot written as JSON (the field names of the
// Snapshot type), as `banshee plan --snapshot FILE` takes it to rehearse a
// policy change offline. Unknown fields and malformed values are
// *InputError values with the line they are on. A snapshot without "now"
// keeps a zero Now: the caller sets it.
func ReadSnapshot(r io.Reader) (Snapshot, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Snapshot{}, fmt.Errorf("reading snapshot: %w", err)
	}
	var s Snapshot
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		if errors.Is(err, io.EOF) {
			return Snapshot{}, &InputError{Value: "snapshot", Msg: "empty snapshot (want a JSON object)"}
		}
		off := dec.InputOffset()
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			off = se.Offset
		case errors.As(err, &te):
			off = te.Offset
		default:
			// Unknown fields and bad addresses carry no offset; find the
			// quoted name or value the message cites.
			if m := quotedRe().FindStringSubmatch(err.Error()); m != nil {
				if i := bytes.Index(data, []byte(`"`+m[1]+`"`)); i >= 0 {
					off = int64(i)
				}
			}
		}
		return Snapshot{}, &InputError{Value: "snapshot", Line: lineAt(data, off), Msg: err.Error()}
	}
	if dec.More() {
		return Snapshot{}, &InputError{Value: "snapshot", Line: lineAt(data, dec.InputOffset()), Msg: "trailing data after the JSON object"}
	}
	return s, nil
}

// quotedRe is compiled on first use (an error path).
var quotedRe = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`"([^"]+)"`) })

// lineAt is the 1-based line of byte offset off in data.
func lineAt(data []byte, off int64) int {
	off = min(max(off, 0), int64(len(data)))
	return bytes.Count(data[:off], []byte{'\n'}) + 1
}
