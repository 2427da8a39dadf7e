package policy

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"
)

// Day is the unit "d" of ParseDuration: 24 hours, whatever the calendar
// says about daylight saving time.
const Day = 24 * time.Hour

// ParseDuration reads a duration as written by people: a Go duration
// ("90s", "2h30m") that may also count days ("2d", "1d12h", "1.5d"). It is
// the one parser behind every duration of the flags and the configuration.
// A negative duration is an error.
func ParseDuration(s string) (time.Duration, error) {
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, errors.New("empty duration (want e.g. 90s, 2h, 2d or 1d12h)")
	}
	if strings.HasPrefix(in, "-") {
		return 0, errors.New("duration must not be negative")
	}
	// Split off the day terms ("1d", "1.5d"): Go's parser does not know
	// the unit. Everything else goes to time.ParseDuration unchanged.
	var days float64
	var rest strings.Builder
	for i := 0; i < len(in); {
		j := i
		for j < len(in) && (in[j] == '.' || in[j] >= '0' && in[j] <= '9') {
			j++
		}
		k := j
		for k < len(in) && !(in[k] == '.' || in[k] >= '0' && in[k] <= '9') {
			k++
		}
		if in[j:k] == "d" {
			n, err := strconv.ParseFloat(in[i:j], 64)
			if err != nil || j == i {
				return 0, errors.New("not a duration (want e.g. 90s, 2h, 2d or 1d12h)")
			}
			days += n
		} else {
			rest.WriteString(in[i:k])
		}
		i = k
	}
	var d time.Duration
	if r := rest.String(); r != "" {
		v, err := time.ParseDuration(r)
		if err != nil {
			return 0, errors.New("not a duration (want e.g. 90s, 2h, 2d or 1d12h)")
		}
		d = v
	}
	if days > 0 {
		dd := days * float64(Day)
		if dd+float64(d) >= math.MaxInt64 {
			return 0, errors.New("duration too long")
		}
		d += time.Duration(dd)
	}
	return d, nil
}

// FormatDuration writes d the way ParseDuration reads it, without zero
// units: 45s, 1h30m, 2d, 1d12h.
func FormatDuration(d time.Duration) string {
	if d < 0 {
		return "-" + FormatDuration(-d)
	}
	days := d / Day
	d -= days * Day
	var s string
	if d > 0 || days == 0 {
		s = fmtHMS(d)
	}
	if days > 0 {
		s = strconv.FormatInt(int64(days), 10) + "d" + s
	}
	return s
}
