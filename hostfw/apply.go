package hostfw

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Pending is an applied ruleset that waits for "banshee confirm": unless
// it arrives by Deadline, the previous ruleset comes back by itself.
type Pending struct {
	Token    string    `json:"token"`
	Deadline time.Time `json:"deadline"`
	Applied  time.Time `json:"applied"`
	Families []string  `json:"families"`
}

const (
	pendingFile = "apply-pending.json"
	prevPrefix  = "apply-previous."
)

// ErrNothingPending means there is no applied ruleset to confirm or roll back.
var ErrNothingPending = errors.New("no applied ruleset is waiting for confirmation")

// Ruleset is an iptables-save file for one family.
type Ruleset struct {
	Family Family
	Text   string
}

// Apply replaces the tables of each ruleset atomically (iptables-restore of
// the whole file after a --test run of the same input), keeping banshee's
// own chain and its jump from INPUT in the filter table, and keeping the
// previous ruleset. With confirmWithin > 0 the change is pending: the caller
// starts a timer that calls Rollback(token) at the deadline, which brings the
// previous ruleset back unless Confirm came first. A failed test changes
// nothing and names the offending line.
func (f *Firewall) Apply(ctx context.Context, sets []Ruleset, confirmWithin time.Duration) (*Pending, error) {
	return f.ApplyArmed(ctx, sets, confirmWithin, nil)
}

// ApplyArmed is Apply with the rollback armed before anything changes: with
// confirmWithin > 0, arm is called with the pending change (it starts the
// timer that calls Rollback(token) at the deadline) and the pending file is
// written, and only then are the tables replaced. Killed at any moment after
// that, the previous ruleset comes back at the deadline. Once the change has
// started it is not cancelled by ctx. When the change fails, ApplyArmed reads
// what is live and says so in its error.
func (f *Firewall) ApplyArmed(ctx context.Context, sets []Ruleset, confirmWithin time.Duration, arm func(*Pending) error) (*Pending, error) {
	unlock, err := f.lockState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if p, err := f.state.loadPending(); err != nil {
		return nil, err
	} else if p != nil {
		return nil, fmt.Errorf("a ruleset applied at %s is still waiting for confirmation until %s: run banshee confirm or banshee rollback first",
			p.Applied.Format(time.RFC3339), p.Deadline.Format(time.RFC3339))
	}
	// The chain banshee keeps in every ruleset matches its sets: they must
	// exist before the ruleset is tested.
	for _, fam := range []Family{V4, V6} {
		if err := f.ensureSet(ctx, fam); err != nil {
			return nil, err
		}
	}
	payloads := map[Family]string{}
	var fams []string
	for _, rs := range sets {
		if err := CheckRuleset(rs.Text); err != nil {
			return nil, fmt.Errorf("%s ruleset: %w", rs.Family, err)
		}
		p, err := f.withOwnChain(rs.Family, rs.Text)
		if err != nil {
			return nil, err
		}
		payloads[rs.Family] = p
		fams = append(fams, rs.Family.String())
	}
	// Test everything before anything changes.
	for _, fam := range []Family{V4, V6} {
		p, ok := payloads[fam]
		if !ok {
			continue
		}
		if _, err := f.r.run(ctx, strings.NewReader(p), f.t.restore[fam], "--wait", "--test"); err != nil {
			return nil, fmt.Errorf("testing the %s ruleset (nothing changed)%s: %w", fam, offendingLine(err, p), classify(err))
		}
	}
	// Keep what is live now, so it can come back.
	prev, live := map[Family]string{}, map[Family]string{}
	for fam := range payloads {
		out, err := f.r.run(ctx, nil, f.t.save[fam])
		if err != nil {
			return nil, fmt.Errorf("saving the current %s ruleset (nothing changed): %w", fam, classify(err))
		}
		live[fam] = string(out)
		// A table the kernel does not have yet is saved as the empty,
		// all-ACCEPT table it behaves like, so a rollback removes what the
		// applied ruleset added there.
		prev[fam] = withEmptyTables(string(out), payloads[fam])
		if err := f.state.mkdir(); err != nil {
			return nil, err
		}
		if err := writeFileAtomic(f.state.path(prevPrefix+fam.String()), []byte(prev[fam])); err != nil {
			return nil, err
		}
	}
	p, err := f.armRollback(confirmWithin, fams, arm)
	if err != nil {
		return nil, err
	}
	// From here on the change runs to its end: a SIGTERM must not leave
	// half of it, and the armed timer covers a kill.
	cctx := context.WithoutCancel(ctx)
	var done []Family
	for _, fam := range []Family{V4, V6} {
		payload, ok := payloads[fam]
		if !ok {
			continue
		}
		if _, err := f.r.run(cctx, strings.NewReader(payload), f.t.restore[fam], "--wait"); err != nil {
			applyErr := fmt.Errorf("applying the %s ruleset%s: %w", fam, offendingLine(err, payload), classify(err))
			return nil, f.afterFailedApply(cctx, applyErr, payloads, prev, live, done, p)
		}
		done = append(done, fam)
	}
	return p, nil
}

// armRollback makes the pending change and arms its rollback before
// anything changes: the timer first (a timer without a pending file does
// nothing), then the pending file. nil without confirmWithin.
func (f *Firewall) armRollback(confirmWithin time.Duration, fams []string, arm func(*Pending) error) (*Pending, error) {
	if confirmWithin <= 0 {
		return nil, nil
	}
	tok := make([]byte, 12)
	_, _ = rand.Read(tok)
	now := f.now()
	p := &Pending{Token: hex.EncodeToString(tok), Applied: now, Deadline: now.Add(confirmWithin), Families: fams}
	if arm != nil {
		if err := arm(p); err != nil {
			return nil, fmt.Errorf("arming the rollback (nothing changed): %w", err)
		}
	}
	if err := f.state.savePending(p); err != nil {
		return nil, fmt.Errorf("recording the pending confirmation (nothing changed): %w", err)
	}
	return p, nil
}

// afterFailedApply puts back the families this apply already changed, then
// reads what is live and says so: the error names each family whose
// previous ruleset is live again and each that differs from it. When all
// are back, the pending change is cleared (its timer then does nothing);
// otherwise it stays for the timer.
func (f *Firewall) afterFailedApply(ctx context.Context, applyErr error, payloads, prev, live map[Family]string, done []Family, p *Pending) error {
	var errs []error
	for _, d := range done {
		if rerr := f.restoreTx(ctx, d, prev[d], false); rerr != nil {
			errs = append(errs, fmt.Errorf("restoring the previous %s ruleset: %w", d, rerr))
		}
	}
	var back, changed, unknown []string
	for _, fam := range []Family{V4, V6} {
		if _, ok := payloads[fam]; !ok {
			continue
		}
		out, err := f.r.run(ctx, nil, f.t.save[fam])
		switch {
		case err != nil:
			unknown = append(unknown, fmt.Sprintf("%s (reading it failed: %v)", fam, classify(err)))
		case sameRuleset(string(out), live[fam]):
			back = append(back, fam.String())
		default:
			changed = append(changed, fam.String())
		}
	}
	var state string
	switch {
	case len(changed) == 0 && len(unknown) == 0:
		state = fmt.Sprintf("checked: the previous %s ruleset is live (nothing changed)", strings.Join(back, " and "))
		if p != nil {
			if err := os.Remove(f.state.path(pendingFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("clearing the pending confirmation: %w", err))
			}
		}
	default:
		state = "checked: "
		if len(changed) > 0 {
			state += fmt.Sprintf("the live %s ruleset differs from the previous one", strings.Join(changed, " and "))
		}
		if len(unknown) > 0 {
			if len(changed) > 0 {
				state += "; "
			}
			state += "cannot tell what is live for " + strings.Join(unknown, ", ")
		}
		if p != nil {
			state += fmt.Sprintf("; the rollback timer restores the previous ruleset at %s (or run banshee rollback)", p.Deadline.Format(time.RFC3339))
		} else {
			state += "; run banshee rollback"
		}
	}
	if rerr := errors.Join(errs...); rerr != nil {
		return fmt.Errorf("%w; %s; and %w", applyErr, state, rerr)
	}
	return fmt.Errorf("%w; %s", applyErr, state)
}

// sameRuleset compares two iptables-save texts without their comments and
// packet counters.
func sameRuleset(a, b string) bool { return normalizeSave(a) == normalizeSave(b) }

// saveCounters is compiled on first use: a package variable would be
// compiled at the start of every command.
var saveCounters = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\[\d+:\d+\]`) })

func normalizeSave(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		out = append(out, saveCounters().ReplaceAllString(l, "[0:0]"))
	}
	return strings.Join(out, "\n")
}

// withOwnChain adds banshee's chain, its rules and the jump from INPUT to
// the filter table of an iptables-save text, replacing any banshee rules
// the text already carries, so applying a ruleset never drops the blocks.
func (f *Firewall) withOwnChain(fam Family, text string) (string, error) {
	rules, err := f.chainRules(fam)
	if err != nil {
		return "", err
	}
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	inFilter, hasJump := false, false
	own := ":" + f.opts.Chain + " "
	ownRule := "-A " + f.opts.Chain + " "
	jump := "-A INPUT -j " + f.opts.Chain
	for sc.Scan() {
		line := sc.Text()
		trim := strings.TrimSpace(line)
		switch {
		case trim == "*filter":
			inFilter = true
			out.WriteString(line + "\n")
			out.WriteString(own + "- [0:0]\n")
			continue
		case strings.HasPrefix(trim, "*"):
			inFilter = false
		case inFilter && (strings.HasPrefix(trim, own) || strings.HasPrefix(trim, ownRule)):
			continue // replaced by banshee's current rules below
		case inFilter && trim == jump:
			hasJump = true
		case inFilter && trim == "COMMIT":
			rb := &restoreBuilder{}
			for _, r := range rules {
				rb.append(f.opts.Chain, r)
			}
			if !hasJump {
				rb.insert("INPUT", 1, Rule{"-j", f.opts.Chain})
			}
			out.WriteString(rb.b.String())
			inFilter = false
		}
		out.WriteString(line + "\n")
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("reading the %s ruleset: %w", fam, err)
	}
	// Without a filter table the live one, banshee's chain in it, stays.
	return out.String(), nil
}

// Confirm keeps the applied ruleset: the pending rollback is cancelled.
func (f *Firewall) Confirm() (*Pending, error) {
	unlock, err := f.lockState()
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := f.state.loadPending()
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, ErrNothingPending
	}
	if err := os.Remove(f.state.path(pendingFile)); err != nil {
		return nil, fmt.Errorf("confirming: %w", err)
	}
	return p, nil
}

// Rollback brings back the ruleset that was live before the last Apply.
// With a token (the timer's call) it acts only if that very change is still
// pending; a confirmed or superseded change is left alone.
func (f *Firewall) Rollback(ctx context.Context, token string) (bool, error) {
	unlock, err := f.lockState()
	if err != nil {
		return false, err
	}
	defer unlock()
	p, err := f.state.loadPending()
	if err != nil {
		return false, err
	}
	if token != "" && (p == nil || p.Token != token) {
		return false, nil
	}
	var errs []error
	restored := false
	for _, fam := range []Family{V4, V6} {
		prev, err := os.ReadFile(f.state.path(prevPrefix + fam.String()))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("reading the previous %s ruleset: %w", fam, err))
			continue
		}
		if err := f.restoreTx(ctx, fam, string(prev), false); err != nil {
			errs = append(errs, fmt.Errorf("restoring the previous %s ruleset: %w", fam, err))
			continue
		}
		restored = true
	}
	if err := errors.Join(errs...); err != nil {
		return restored, err
	}
	if !restored {
		return false, errors.New("no previous ruleset is kept: nothing was applied with banshee apply")
	}
	if p != nil {
		if err := os.Remove(f.state.path(pendingFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return true, fmt.Errorf("clearing the pending confirmation: %w", err)
		}
	}
	return true, nil
}

// PendingApply returns the change waiting for confirmation, or nil.
func (f *Firewall) PendingApply() (*Pending, error) {
	if f.state == nil {
		return nil, nil
	}
	return f.state.loadPending()
}

func (s *store) loadPending() (*Pending, error) {
	data, err := os.ReadFile(s.path(pendingFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.path(pendingFile), err)
	}
	var p Pending
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("reading %s: %w", s.path(pendingFile), err)
	}
	return &p, nil
}

func (s *store) savePending(p *Pending) error {
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.dir, "hostfw", pendingFile), data)
}

// CheckRuleset rejects a ruleset file with control characters other than
// newlines and tabs (a carriage return or NUL would confuse iptables-restore).
func CheckRuleset(text string) error {
	for i, line := range strings.Split(text, "\n") {
		if err := CheckText(fmt.Sprintf("line %d", i+1), strings.ReplaceAll(line, "\t", " ")); err != nil {
			return err
		}
	}
	return nil
}

// builtinChains are the built-in chains of each iptables table.
var builtinChains = map[string][]string{
	"filter":   {"INPUT", "FORWARD", "OUTPUT"},
	"nat":      {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"mangle":   {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"},
	"raw":      {"PREROUTING", "OUTPUT"},
	"security": {"INPUT", "FORWARD", "OUTPUT"},
}

// withEmptyTables adds to saved an empty, all-ACCEPT section for every table
// that applied has and saved lacks.
func withEmptyTables(saved, applied string) string {
	has := func(text, table string) bool {
		for _, l := range strings.Split(text, "\n") {
			if strings.TrimSpace(l) == "*"+table {
				return true
			}
		}
		return false
	}
	var b strings.Builder
	b.WriteString(saved)
	for _, table := range []string{"raw", "mangle", "nat", "filter", "security"} {
		if !has(applied, table) || has(saved, table) {
			continue
		}
		b.WriteString("*" + table + "\n")
		for _, c := range builtinChains[table] {
			b.WriteString(":" + c + " ACCEPT [0:0]\n")
		}
		b.WriteString("COMMIT\n")
	}
	return b.String()
}
