package hostfw

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-iptables/iptables"
)

// Options configure a Firewall.
type Options struct {
	Chain          string  // own chain, default BANSHEE
	SetV4, SetV6   string  // blocklist sets, default banshee4 / banshee6
	Backend        Backend // auto, nft or legacy
	HookDockerUser bool    // also jump from DOCKER-USER (Docker-published ports bypass INPUT)
	HookForward    bool    // also jump from FORWARD
	MaxEntries     int     // maxelem of each set
	StateDir       string  // where blocks are journaled; "" disables persistence
}

func (o *Options) defaults() {
	if o.Chain == "" {
		o.Chain = "BANSHEE"
	}
	if o.SetV4 == "" {
		o.SetV4 = "banshee4"
	}
	if o.SetV6 == "" {
		o.SetV6 = "banshee6"
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 1 << 20
	}
	if o.Backend == "" {
		o.Backend = BackendAuto
	}
}

// iptablesAPI is the part of go-iptables that hostfw uses.
type iptablesAPI interface {
	Exists(table, chain string, rulespec ...string) (bool, error)
	ChainExists(table, chain string) (bool, error)
	List(table, chain string) ([]string, error)
}

// Firewall manages banshee's chain and sets in the current network namespace.
type Firewall struct {
	opts  Options
	r     runner
	sets  setAdder
	t     *tools
	ipt   map[Family]iptablesAPI
	now   func() time.Time
	state *store

	rateLimits       []RateLimit
	rateLimitsLoaded bool

	// ensured remembers when Ensure last found a family in place, so a
	// long-running caller (watch) does not probe iptables on every block.
	ensured map[Family]time.Time
}

// ensureValid is how long a successful Ensure is trusted within a process.
const ensureValid = 5 * time.Second

// New finds the kernel tools and returns a Firewall. It changes nothing.
func New(ctx context.Context, opts Options) (*Firewall, error) {
	if err := checkPrivileges(); err != nil {
		return nil, err
	}
	return newFirewall(ctx, opts, execRunner{})
}

func newFirewall(ctx context.Context, opts Options, r runner) (*Firewall, error) {
	opts.defaults()
	for _, n := range []struct{ what, name string }{{"chain", opts.Chain}, {"set", opts.SetV4}, {"set", opts.SetV6}} {
		if !validName(n.name, 31, "_.-") {
			return nil, fmt.Errorf("invalid %s name %q: want 1-31 letters, digits, _, . or -", n.what, n.name)
		}
	}
	t, err := lookTools(ctx, r, opts.Backend)
	if err != nil {
		return nil, err
	}
	f := &Firewall{opts: opts, r: r, sets: netlinkSets{}, t: t, ipt: map[Family]iptablesAPI{}, now: time.Now}
	if opts.StateDir != "" {
		f.state = &store{dir: opts.StateDir}
	}
	return f, nil
}

// Backend reports the iptables backend in use.
func (f *Firewall) Backend() Backend { return f.t.backend }

func (f *Firewall) setName(fam Family) string {
	if fam == V6 {
		return f.opts.SetV6
	}
	return f.opts.SetV4
}

func (f *Firewall) iptables(fam Family) (iptablesAPI, error) {
	if h, ok := f.ipt[fam]; ok {
		return h, nil
	}
	proto := iptables.ProtocolIPv4
	if fam == V6 {
		proto = iptables.ProtocolIPv6
	}
	h, err := iptables.New(iptables.IPFamily(proto), iptables.Path(f.t.ipt[fam]), iptables.Timeout(5))
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", f.t.ipt[fam], classify(err))
	}
	f.ipt[fam] = h
	return h, nil
}

// hooks lists the built-in chains that jump to banshee's chain.
func (f *Firewall) hooks() []string {
	h := []string{"INPUT"}
	if f.opts.HookForward {
		h = append(h, "FORWARD")
	}
	if f.opts.HookDockerUser {
		h = append(h, "DOCKER-USER")
	}
	return h
}

// chainRules is the whole content of banshee's chain for a family: the
// blocklist rule, then the rate limits.
func (f *Firewall) chainRules(fam Family) ([]Rule, error) {
	rls, err := f.rateLimitRules()
	if err != nil {
		return nil, err
	}
	return append([]Rule{{"-m", "set", "--match-set", f.setName(fam), "src", "-m", "comment", "--comment", chainMarker, "-j", "DROP"}}, rls...), nil
}

// setHeader is what "ipset list -t" says about a set.
type setHeader struct {
	exists     bool
	references int
	entries    int
}

func (f *Firewall) header(ctx context.Context, fam Family) (setHeader, error) {
	out, err := f.r.run(ctx, nil, f.t.ipset, "list", "-t", f.setName(fam))
	if err != nil {
		if isSetMissing(err) {
			return setHeader{}, nil
		}
		return setHeader{}, fmt.Errorf("reading set %s: %w", f.setName(fam), classify(err))
	}
	h := setHeader{exists: true}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		switch k {
		case "References":
			h.references, _ = strconv.Atoi(v)
		case "Number of entries":
			h.entries, _ = strconv.Atoi(v)
		}
	}
	return h, nil
}

// Ensure makes sure the set, the chain and the jump into it exist for a
// family. It is cheap when everything is in place (two probes) and otherwise
// builds the chain in one iptables-restore transaction after a test run.
func (f *Firewall) Ensure(ctx context.Context, fam Family) error {
	if t, ok := f.ensured[fam]; ok && f.now().Sub(t) < ensureValid {
		return nil
	}
	if err := f.ensure(ctx, fam); err != nil {
		return err
	}
	if f.ensured == nil {
		f.ensured = map[Family]time.Time{}
	}
	f.ensured[fam] = f.now()
	return nil
}

// Probe checks, changing nothing, whether a family's hook is in place, and
// remembers a yes for Ensure. Callers run it while they decide, so the
// check's process overlaps their own work.
func (f *Firewall) Probe(ctx context.Context, fam Family) bool {
	if len(f.hooks()) != 1 || !f.inputJumps(ctx, fam) {
		return false
	}
	if f.ensured == nil {
		f.ensured = map[Family]time.Time{}
	}
	f.ensured[fam] = f.now()
	return true
}

// inputJumps reports whether INPUT jumps to banshee's chain, as
// "iptables -C INPUT -j CHAIN" would, without a process: for the nft
// backend from one nf_tables netlink dump of INPUT's rules, for legacy from
// the kernel's filter table (getsockopt); when that read fails, by running
// iptables.
func (f *Firewall) inputJumps(ctx context.Context, fam Family) bool {
	switch f.t.backend {
	case BackendNFT:
		if ok, err := nftJumps(fam, "INPUT", f.opts.Chain); err == nil {
			return ok
		}
	case BackendLegacy:
		if ok, err := legacyJumps(fam, f.opts.Chain); err == nil {
			return ok
		}
	}
	_, err := f.r.run(ctx, nil, f.t.ipt[fam], "-w", "-C", "INPUT", "-j", f.opts.Chain)
	return err == nil
}

func (f *Firewall) ensure(ctx context.Context, fam Family) error {
	// Fast probe: does INPUT still jump to banshee's chain? What wipes
	// banshee's rules in practice (iptables -F, a firewall service
	// reloading) removes that jump; a missing set shows up as a failed add,
	// which runs the full setup too.
	if len(f.hooks()) == 1 && f.inputJumps(ctx, fam) {
		return nil
	}
	h, err := f.header(ctx, fam)
	if err != nil {
		return err
	}
	return f.setup(ctx, fam, h)
}

// chainMarker is the comment of the first rule of banshee's chain: setup
// only ever rebuilds a chain that carries it (or an empty one).
const chainMarker = "banshee blocklist"

// validName reports whether s is 1 to max ASCII letters, digits and bytes
// of punct. (A loop, not a regular expression: a package variable would be
// compiled at the start of every command.)
func validName(s string, max int, punct string) bool {
	if s == "" || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(punct, c) >= 0) {
			return false
		}
	}
	return true
}

// checkOwnChain refuses to rebuild a chain of that name that some other
// tool filled: rebuilding flushes it.
func (f *Firewall) checkOwnChain(ipt iptablesAPI) error {
	ok, err := ipt.ChainExists("filter", f.opts.Chain)
	if err != nil {
		return fmt.Errorf("looking for chain %s: %w", f.opts.Chain, classify(err))
	}
	if !ok {
		return nil
	}
	rules, err := ipt.List("filter", f.opts.Chain)
	if err != nil {
		return fmt.Errorf("listing chain %s: %w", f.opts.Chain, classify(err))
	}
	for _, r := range rules {
		if strings.HasPrefix(r, "-N ") || strings.HasPrefix(r, "-P ") {
			continue
		}
		if strings.Contains(r, chainMarker) {
			return nil
		}
		return fmt.Errorf("chain %s exists and is not banshee's (first rule %q): set host.chain to a name of banshee's own", f.opts.Chain, r)
	}
	return nil // empty: nobody's rules to lose
}

// ensureSet creates a family's set unless it exists.
func (f *Firewall) ensureSet(ctx context.Context, fam Family) error {
	h, err := f.header(ctx, fam)
	if err != nil || h.exists {
		return err
	}
	return f.createSet(ctx, fam)
}

func (f *Firewall) createSet(ctx context.Context, fam Family) error {
	set := f.setName(fam)
	line := setCreateLine(set, fam, f.opts.MaxEntries)
	if _, err := f.r.run(ctx, strings.NewReader(line), f.t.ipset, "-exist", "restore"); err != nil {
		return fmt.Errorf("creating set %s: %w", set, classify(err))
	}
	return nil
}

// setup creates the set and (re)builds the chain and its hooks atomically.
func (f *Firewall) setup(ctx context.Context, fam Family, h setHeader) error {
	if !h.exists {
		if err := f.createSet(ctx, fam); err != nil {
			return err
		}
	}
	ipt, err := f.iptables(fam)
	if err != nil {
		return err
	}
	if err := f.checkOwnChain(ipt); err != nil {
		return err
	}
	rules, err := f.chainRules(fam)
	if err != nil {
		return err
	}
	rb := newRestore()
	rb.declare(f.opts.Chain)
	for _, r := range rules {
		rb.append(f.opts.Chain, r)
	}
	for _, hook := range f.hooks() {
		if hook == "DOCKER-USER" {
			ok, err := ipt.ChainExists("filter", hook)
			if err != nil {
				return fmt.Errorf("looking for chain %s: %w", hook, classify(err))
			}
			if !ok {
				continue // Docker is not running; nothing to hook
			}
		}
		ok, err := ipt.Exists("filter", hook, "-j", f.opts.Chain)
		if err != nil {
			ok = false // the chain does not exist yet: the jump cannot either
		}
		if !ok {
			rb.insert(hook, 1, Rule{"-j", f.opts.Chain})
		}
	}
	return f.applyRestore(ctx, fam, rb.String())
}

// applyRestore runs one iptables-restore --noflush transaction after testing
// the same input. On a failed test nothing changes and the error names the
// offending line of the input.
func (f *Firewall) applyRestore(ctx context.Context, fam Family, payload string) error {
	return f.restoreTx(ctx, fam, payload, true)
}

// restoreTx tests payload with iptables-restore --test and then applies it
// in one run. With noflush only the chains the payload declares are
// replaced; without it every table in the payload is replaced whole.
func (f *Firewall) restoreTx(ctx context.Context, fam Family, payload string, noflush bool) error {
	bin := f.t.restore[fam]
	args := []string{"--wait"}
	if noflush {
		args = append(args, "--noflush")
	}
	if _, err := f.r.run(ctx, strings.NewReader(payload), bin, append(args, "--test")...); err != nil {
		return fmt.Errorf("testing %s input (nothing changed)%s: %w", bin, offendingLine(err, payload), classify(err))
	}
	if _, err := f.r.run(ctx, strings.NewReader(payload), bin, args...); err != nil {
		return fmt.Errorf("applying %s: %w", bin, classify(err))
	}
	return nil
}

// ResetPermissive is the emergency reset: the filter table of both
// families becomes ACCEPT everywhere with no rules, in one transaction per
// family. banshee's sets stay, unreferenced, so "banshee restore" can bring
// the blocks back once the operator is in again.
func (f *Firewall) ResetPermissive(ctx context.Context) error {
	const permissive = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
	var errs []error
	for _, fam := range []Family{V4, V6} {
		if err := f.restoreTx(ctx, fam, permissive, false); err != nil {
			errs = append(errs, fmt.Errorf("resetting %s: %w", fam, err))
		}
	}
	return errors.Join(errs...)
}

// offendingLine finds "line N" in iptables-restore's error and quotes that
// line of the input.
func offendingLine(err error, payload string) string {
	var ce *CmdError
	if !errors.As(err, &ce) {
		return ""
	}
	i := strings.Index(ce.Stderr, "line ")
	if i < 0 {
		return ""
	}
	var n int
	if _, e := fmt.Sscanf(ce.Stderr[i:], "line %d", &n); e != nil {
		return ""
	}
	lines := strings.Split(payload, "\n")
	if n < 1 || n > len(lines) {
		return ""
	}
	return fmt.Sprintf(" at input line %d %q", n, lines[n-1])
}

// BlockResult says what Block did.
type BlockResult struct {
	Added     int
	Refreshed []netip.Prefix // already present: TTL and comment refreshed
	// AddedOrRefreshed counts the entries of a bulk block into a set too
	// large to list first (see listFactor): each is in the set now, new or
	// refreshed.
	AddedOrRefreshed int
	Clamped          []netip.Prefix // TTL cut to MaxTimeout, the kernel's limit
}

// probeLimit is how many entries Block adds one message each (a plain add
// tells new from present); more go in bulk, many per message.
const probeLimit = 16

// Block adds entries to the sets (refreshing TTL and comment of entries
// already there) in one ipset transaction per call and journals them.
func (f *Firewall) Block(ctx context.Context, entries []Entry) (BlockResult, error) {
	var res BlockResult
	if len(entries) == 0 {
		return res, nil
	}
	fams := map[Family]bool{}
	for _, e := range entries {
		if !e.Prefix.IsValid() || e.Prefix.Bits() == 0 {
			return res, fmt.Errorf("refusing to block %q", e.Prefix)
		}
		if err := CheckText("reason", e.Reason); err != nil {
			return res, err
		}
		fams[FamilyOf(e.Prefix)] = true
	}
	// ipset keeps an entry at most MaxTimeout: longer blocks are cut to it
	// (and journaled as cut, so restore agrees with the kernel).
	var clamped []netip.Prefix
	for i := range entries {
		if entries[i].TTL > MaxTimeout {
			if len(clamped) == 0 {
				entries = slices.Clone(entries)
			}
			entries[i].TTL = MaxTimeout
			clamped = append(clamped, entries[i].Prefix)
		}
	}
	unlock, err := f.state.lock()
	if err != nil {
		return res, err
	}
	defer unlock()
	for _, fam := range []Family{V4, V6} {
		if fams[fam] {
			if err := f.Ensure(ctx, fam); err != nil {
				return res, err
			}
		}
	}
	// The journal is written while the kernel takes the entries; a failed
	// kernel change takes the records back out (the state lock is held).
	now := f.now()
	type journaled struct {
		undo func() error
		err  error
	}
	jc := make(chan journaled, 1)
	go func() {
		undo, err := f.state.journalBlocksUndo(now, entries)
		jc <- journaled{undo, err}
	}()
	var addErr error
	for attempt := 0; ; attempt++ {
		res, addErr = f.add(ctx, entries)
		if addErr == nil {
			break
		}
		f.ensured = nil // probe again next time
		if !errors.Is(addErr, errNoSet) && !isSetMissing(addErr) || attempt > 0 {
			break
		}
		// A set vanished under a live chain: rebuild, then add once more.
		if herr := f.rebuild(ctx, fams); herr != nil {
			addErr = herr
			break
		}
	}
	j := <-jc
	if addErr != nil {
		if j.err == nil {
			if uerr := j.undo(); uerr != nil {
				return res, fmt.Errorf("%w; and %w", addErr, uerr)
			}
		}
		return res, addErr
	}
	if j.err != nil {
		return res, fmt.Errorf("blocked in the kernel, but journaling for restore failed: %w", j.err)
	}
	res.Added = len(entries) - len(res.Refreshed) - res.AddedOrRefreshed
	res.Clamped = clamped
	return res, nil
}

// rebuild runs the full setup of the given families.
func (f *Firewall) rebuild(ctx context.Context, fams map[Family]bool) error {
	for fam := range fams {
		h, err := f.header(ctx, fam)
		if err == nil {
			err = f.setup(ctx, fam, h)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// add puts entries into the sets over netlink: one message each for a few
// (a plain add tells new from present, and a present entry is then
// refreshed), many per message in bulk, after one listing of the sets to
// tell new from refreshed.
func (f *Firewall) add(ctx context.Context, entries []Entry) (BlockResult, error) {
	var res BlockResult
	if len(entries) <= probeLimit {
		for _, e := range entries {
			set := f.setName(FamilyOf(e.Prefix))
			err := f.sets.add(set, e, false)
			if errors.Is(err, errEntryExists) {
				res.Refreshed = append(res.Refreshed, e.Prefix)
				err = f.sets.add(set, e, true)
			}
			if err != nil {
				return res, fmt.Errorf("adding %s to %s: %w", e.Prefix, set, err)
			}
		}
		return res, nil
	}
	present, known, err := f.present(entries)
	if err != nil {
		return res, err
	}
	if !known {
		res.AddedOrRefreshed = len(entries)
	}
	if len(present) > 0 {
		res.Refreshed = make([]netip.Prefix, 0, min(len(present), len(entries)))
	}
	for _, fam := range []Family{V4, V6} {
		set := f.setName(fam)
		es := make([]Entry, 0, len(entries))
		for _, e := range entries {
			if FamilyOf(e.Prefix) == fam {
				es = append(es, e)
				if _, ok := present[e.Prefix]; ok {
					res.Refreshed = append(res.Refreshed, e.Prefix)
				}
			}
		}
		if len(es) == 0 {
			continue
		}
		if err := f.sets.addAll(set, es); err != nil {
			return res, fmt.Errorf("adding %d entries to %s: %w", len(es), set, err)
		}
	}
	return res, nil
}

// listFactor bounds the listing a bulk block takes to tell new entries from
// refreshed ones: it lists a set only while the set holds at most this many
// entries per entry being added. Beyond that listing would cost more than
// the adding, and the result says "added or refreshed".
const listFactor = 4

// present returns which of entries their sets hold now, from one listing
// of each set (none for an empty set), or known=false when a set is too
// large to list for this many entries.
func (f *Firewall) present(entries []Entry) (present map[netip.Prefix]struct{}, known bool, err error) {
	perFam := map[Family]int{}
	for _, e := range entries {
		perFam[FamilyOf(e.Prefix)]++
	}
	for _, fam := range []Family{V4, V6} {
		if perFam[fam] == 0 {
			continue
		}
		set := f.setName(fam)
		n, err := f.sets.count(set)
		switch {
		case errors.Is(err, errNoSet):
			continue // the add says so, and Block rebuilds
		case err != nil:
			return nil, false, fmt.Errorf("counting the entries of %s: %w", set, err)
		case n == 0:
			continue
		case n > listFactor*perFam[fam]:
			return nil, false, nil
		}
		m, err := f.sets.members(set)
		if err != nil && !errors.Is(err, errNoSet) {
			return nil, false, fmt.Errorf("listing %s: %w", set, err)
		}
		if present == nil {
			present = m
			continue
		}
		maps.Copy(present, m)
	}
	return present, true, nil
}

// Unblock removes prefixes from the sets. It returns the prefixes that were
// not blocked; removing them is a no-op, not an error.
func (f *Firewall) Unblock(ctx context.Context, prefixes []netip.Prefix) (absent []netip.Prefix, err error) {
	unlock, err := f.state.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	present := map[netip.Prefix]bool{}
	if len(prefixes) > probeLimit {
		cur, err := f.list(ctx)
		if err != nil {
			return nil, err
		}
		for _, e := range cur {
			present[e.Prefix] = true
		}
	}
	var buf []byte
	var removed []netip.Prefix
	for _, p := range prefixes {
		set := f.setName(FamilyOf(p))
		if len(prefixes) <= probeLimit {
			_, err := f.r.run(ctx, nil, f.t.ipset, "del", set, prefixArg(p))
			switch {
			case err == nil:
				removed = append(removed, p)
			case isNotInSet(err) || isSetMissing(err):
				absent = append(absent, p)
			default:
				return absent, fmt.Errorf("removing %s from %s: %w", p, set, classify(err))
			}
			continue
		}
		if !present[p] {
			absent = append(absent, p)
			continue
		}
		buf = appendSetDel(buf, set, p)
		removed = append(removed, p)
	}
	if len(buf) > 0 {
		if _, err := f.r.run(ctx, bytes.NewReader(buf), f.t.ipset, "-exist", "restore"); err != nil {
			return absent, fmt.Errorf("removing %d entries: %w", len(removed), classify(err))
		}
	}
	if err := f.state.journalUnblocks(removed); err != nil {
		return absent, fmt.Errorf("unblocked in the kernel, but journaling failed: %w", err)
	}
	return absent, nil
}

// List returns the entries of both sets as the kernel has them now.
func (f *Firewall) List(ctx context.Context) ([]Entry, error) { return f.list(ctx) }

func (f *Firewall) list(ctx context.Context) ([]Entry, error) {
	return f.listSets(ctx, []Family{V4, V6}, nil)
}

// listFamilies lists the sets of the given families with "ipset save".
func (f *Firewall) listFamilies(ctx context.Context, fams ...Family) ([]Entry, error) {
	var all []Entry
	now := f.now()
	for _, fam := range fams {
		out, err := f.r.run(ctx, nil, f.t.ipset, "save", f.setName(fam))
		if err != nil {
			if isSetMissing(err) {
				continue
			}
			return nil, fmt.Errorf("listing set %s: %w", f.setName(fam), classify(err))
		}
		es, err := parseSave(out, now)
		if err != nil {
			return nil, fmt.Errorf("listing set %s: %w", f.setName(fam), err)
		}
		all = append(all, es...)
	}
	return all, nil
}

// parseSave reads the "add" lines of "ipset save".
func parseSave(out []byte, now time.Time) ([]Entry, error) {
	var es []Entry
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "add ") {
			continue
		}
		fields := strings.SplitN(line, " ", 4) // add SET ELEM rest
		if len(fields) < 3 {
			return nil, fmt.Errorf("unexpected ipset line %q", line)
		}
		p, err := parseElem(fields[2])
		if err != nil {
			return nil, fmt.Errorf("unexpected ipset element in %q: %w", line, err)
		}
		e := Entry{Prefix: p}
		rest := ""
		if len(fields) == 4 {
			rest = fields[3]
		}
		if v, ok := strings.CutPrefix(rest, "timeout "); ok {
			num, tail, _ := strings.Cut(v, " ")
			secs, err := strconv.ParseInt(num, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("unexpected timeout in %q", line)
			}
			if secs > 0 {
				e.TTL = time.Duration(secs) * time.Second
				e.ExpiresAt = now.Add(e.TTL).Truncate(time.Second)
			}
			rest = tail
		}
		if c, ok := strings.CutPrefix(rest, "comment \""); ok {
			e.Origin, e.Reason = parseSetComment(strings.TrimSuffix(c, "\""))
		}
		es = append(es, e)
	}
	return es, sc.Err()
}

func parseElem(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		return netip.ParsePrefix(s)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// Status is the state of the host firewall.
type Status struct {
	Backend  Backend        `json:"backend"`
	Families []FamilyStatus `json:"families"`
	Warnings []string       `json:"warnings,omitempty"`
}

// FamilyStatus is the state of one address family.
type FamilyStatus struct {
	Family  string   `json:"family"`
	Set     string   `json:"set"`
	SetOK   bool     `json:"set_present"`
	Entries int      `json:"entries"`
	Chain   bool     `json:"chain_present"`
	Hooks   []string `json:"hooks"`
}

// Status reports backend, sets, chain and hooks, and warns about rules in
// the other iptables backend, which the kernel evaluates as well.
func (f *Firewall) Status(ctx context.Context) (Status, error) {
	st := Status{Backend: f.t.backend}
	for _, fam := range []Family{V4, V6} {
		h, err := f.header(ctx, fam)
		if err != nil {
			return st, err
		}
		fs := FamilyStatus{Family: fam.String(), Set: f.setName(fam), SetOK: h.exists, Entries: h.entries, Hooks: []string{}}
		ipt, err := f.iptables(fam)
		if err != nil {
			return st, err
		}
		if fs.Chain, err = ipt.ChainExists("filter", f.opts.Chain); err != nil {
			return st, fmt.Errorf("looking for chain %s: %w", f.opts.Chain, classify(err))
		}
		for _, hook := range f.hooks() {
			if ok, err := ipt.Exists("filter", hook, "-j", f.opts.Chain); err == nil && ok {
				fs.Hooks = append(fs.Hooks, hook)
			} else if fs.Chain {
				st.Warnings = append(st.Warnings, fmt.Sprintf("%s: %s does not jump to %s: blocks are not enforced there (run banshee restore)", fam, hook, f.opts.Chain))
			}
		}
		if !fs.Chain && h.entries > 0 {
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s: set %s has %d entries but chain %s is missing: nothing is dropped (run banshee restore)", fam, fs.Set, h.entries, f.opts.Chain))
		}
		if other := f.t.otherSav[fam]; other != "" {
			out, err := f.r.run(ctx, nil, other)
			if err == nil {
				if n := countRules(out); n > 0 {
					st.Warnings = append(st.Warnings, fmt.Sprintf("%s: %d rules exist in the other iptables backend (%s); the kernel evaluates both", fam, n, other))
				}
			}
		}
		st.Families = append(st.Families, fs)
	}
	st.Warnings = append(st.Warnings, f.stateWarnings()...)
	return st, nil
}

// stateWarnings reports what restore would skip or refuse in the state
// directory: damaged records, a directory others can write, a symbolic link.
func (f *Firewall) stateWarnings() []string {
	if f.state == nil {
		return nil
	}
	saved, err := f.state.load()
	if err != nil {
		return []string{"state: " + err.Error() + " (restore fails)"}
	}
	var out []string
	var damaged []Damage
	for _, d := range saved.damaged {
		if !d.torn { // a torn last record is expected after a crash
			damaged = append(damaged, d)
		}
	}
	const show = 3
	for i, d := range damaged {
		if i == show {
			out = append(out, fmt.Sprintf("state: %d more damaged record(s)", len(damaged)-show))
			break
		}
		out = append(out, "state: damaged record "+d.String()+" (restore skips it)")
	}
	return out
}

func countRules(save []byte) int {
	n := 0
	for _, l := range bytes.Split(save, []byte("\n")) {
		if bytes.HasPrefix(l, []byte("-A ")) {
			n++
		}
	}
	return n
}

func prefixArg(p netip.Prefix) string { return string(appendPrefix(nil, p)) }
