// Package awsnacl blocks sources at the subnet edge with EC2 network ACL
// deny entries, through aws-sdk-go-v2, and reads what the policy needs from
// EC2: the instance → subnet → VPC chain, security-group rules (managed
// prefix lists expanded), VPC CIDRs and NACL occupancy.
//
// What it must never do: touch an entry outside the reserved rule-number
// range (nacl.rule_min..rule_max) or an allow entry inside it, or an
// egress entry unless nacl.egress is set; touch a NACL it does not manage
// unless told to by id; let a NACL
// exceed nacl.quota entries per direction and family (default rules and
// everyone else's entries counted); place a deny after an allow that
// matches the same traffic; leave an entry without metadata or metadata
// without an entry as the result of a call that reports success.
//
// # Entries and metadata
//
// banshee's entries are the deny entries in the reserved range, all
// protocols, ingress (and egress with the same rule number when
// nacl.egress is set). Entries cannot be tagged, so metadata lives in tags
// on the NACL, one per rule number ("banshee:rule:7" =
// "exp=<unix>;origin=cli;cidr=203.0.113.7/32;sev=5;reason=<escaped>"), read
// together with the entries by the one DescribeNetworkAcls call. Every
// caller (CLI, Lambda, another operator) sees the same state without any
// other store.
//
// Writes go entries first, metadata second; removals go entries first,
// metadata second, and metadata is deleted with the value read, so EC2
// only deletes it if nobody rewrote it meanwhile. A failure midway
// therefore leaves either an entry without metadata or metadata without an
// entry, and the next call reconciles:
//
//   - Metadata without an entry is deleted by the next Block, Unblock or
//     Sweep of that NACL (in the DeleteTags call it makes anyway, or one
//     more).
//   - An entry without metadata is adopted, not deleted: deleting would
//     lift a block someone asked for, while adopting keeps it for a bounded
//     time. Block adopts it when asked to block the same source (reading
//     the NACL again first, so a writer's metadata that arrived meanwhile
//     is kept). Sweep adopts it only on a NACL banshee manages and never
//     on first sight, because a concurrent writer's entry is legitimately
//     untagged between its two calls: the first sweep that finds it
//     records a sighting ("banshee:seen:7" = "at=<unix>;cidr=<cidr>;
//     tag=<hash>", tag a hash of the metadata tag value the number had,
//     0 for none); a sweep DefaultOrphanGrace (5m) or more later that
//     finds the same entry, still without metadata and with the same tag
//     value, reads the NACL again and adopts it with expiry now +
//     nacl.orphan_ttl (default 1h) unless it has metadata by then. So
//     adoption never replaces metadata that matches its entry; it replaces
//     a tag naming another CIDR (a writer that died between rewriting an
//     entry in place and tagging it) only when that tag has not changed
//     for the grace period. Sightings without such an entry are deleted.
//   - When CreateTags fails after Block created entries, Block deletes them
//     again (on a context that survives cancellation) and reports failure.
//
// # Concurrency and the quota
//
// EC2 refuses a second entry with a taken rule number
// (NetworkAclEntryAlreadyExists). Block reads the NACL once per invocation
// (the read FillSnapshot made is reused), creates at the lowest usable
// number, and on that answer reads again: if the number now holds exactly
// the same deny (its own earlier attempt whose answer was lost to a
// timeout, or a racing writer blocking the same source) it adopts it,
// otherwise it takes the next free number. Two processes can therefore not
// produce duplicate numbers or lose a block.
//
// The quota needs more than a count, because two processes that read the
// same count could both add the last entry. Denies of one family are
// confined to a window at the bottom of the reserved range,
// rule_min..end, with end the largest number such that the window's size
// plus the family's entries in the range above end is at most Q-O, where
// Q is the quota and O the entries of that family and direction outside
// the range (the default deny included). Since a number exists only once,
// no interleaving of writers can put more denies of the family into the
// window than it has numbers, and everything above it is counted: the
// quota holds without locks. IPv4 and IPv6 share rule numbers but count
// separately.
//
// Expiry races a sweep: a sweep that read an entry expired deletes it by
// number, so a Block that extended that entry's metadata meanwhile would
// lose its block. Block therefore treats an entry of ours that expires
// within 5 minutes (reuseMargin; Sweep re-reads a NACL whose read is older
// than a minute before deleting from it) as absent: the new block gets a
// fresh entry and the sweep takes the old one. Only when the NACL has no
// room for one is the old entry reused (its metadata extended, or an
// eviction rewriting it in place), which leaves that narrow race open.
//
// Order: rules are evaluated lowest number first. A deny is only placed at
// numbers below every allow entry (of any number, in the directions it
// occupies) whose CIDR and ports overlap the blocked traffic; when the
// whole usable range sits above such an allow, Block fails with a
// *ShadowError naming the rule (ErrShadowed), which the CLI reports as a
// refusal. An existing deny of ours counts as the block only under the
// same test: one that such an allow bypasses for the attacked port is
// passed over and a new deny goes below the allow, or ShadowError.
//
// # Aggregation and eviction without a gap
//
// Changing many entries at once (ten sources into one /24, or a new
// source taking an evicted entry's place) uses ReplaceNetworkAclEntry in
// place: the lowest entry covered by the aggregate is rewritten to the
// aggregate, which covers every old source, and only then are the other
// covered entries deleted. At no moment is a source neither denied by its
// old entry nor by the new one, and no extra slot is needed, which matters
// exactly when the NACL is nearly full. A new aggregate over no existing
// entry is created before anything is deleted. Building a standby NACL and
// swapping the subnet association was rejected: it copies entries that are
// not ours (changes others make between copy and swap would be lost),
// needs a spare NACL per subnet within the VPC's NACL limit, and costs
// more calls.
//
// # Calls, retries and throttling
//
// NewFromConfig sets an explicit retryer: the SDK's standard retryer with
// bounded attempts (nacl.max_attempts) and backoff (nacl.max_backoff),
// retrying RequestLimitExceeded, 5xx, connection errors and timeouts (a
// per-attempt timeout, nacl.call_timeout). Mutating calls also pass a
// client-side token bucket (nacl.mutating_burst, nacl.mutating_rate) so a
// batch stays well under EC2's per-account bucket for mutating calls
// (about 50, refilled at about 5 per second) shared with everyone else.
// AWS error codes are classified in one place (errors.go): a missing
// instance, subnet or NACL is a *NotFoundError that also unwraps to a
// *policy.InputError (exit 2).
//
// # The VPC's own CIDRs
//
// The policy refuses to block the VPC's own CIDR blocks, so every block
// decision needs them. Reading them costs a DescribeVpcs call, which
// would be the only call of a steady-state block that is not about the
// NACL itself. Instead, the first block on a NACL caches them (IPv4 and
// IPv6, associated blocks only) in one tag on the NACL,
// "banshee:vpc-cidrs" = "at=<unix>;vpc=<id>;cidrs=<cidr>,<cidr>", written
// in the same CreateTags call as the rule metadata, so it costs no call of
// its own; at is when DescribeVpcs answered, not when the tag was written,
// so rewriting it never extends one answer's life. The DescribeNetworkAcls
// read that every block makes anyway returns it. It is trusted for
// nacl.vpc_cidr_max_age (default 15m; 0 disables the cache), and not at
// all when its time lies in the future (more than a minute of skew: a
// forged or mis-clocked tag) or when it does not contain a private
// address of an instance target of that VPC (DescribeInstances, made for
// instance targets anyway, shows the instance in a block added since).
// Otherwise DescribeVpcs is called and the next metadata write refreshes
// the tag. A value that would not fit in a tag (many secondary blocks)
// is never written: those VPCs always cost the call.
//
// The trade-off: a secondary CIDR block associated with the VPC less than
// nacl.vpc_cidr_max_age ago may not be protected yet when only a subnet
// is named (with an instance target in that block it is). The window
// cannot be closed more cheaply: the NACL's allow entries say nothing
// about the VPC (the default NACL allows 0.0.0.0/0), and the subnets'
// CIDRs cost a DescribeSubnets call, the same price as DescribeVpcs.
// Anyone allowed ec2:CreateTags on the NACL can forge the cache, but only
// for nacl.vpc_cidr_max_age at a time, and the same principal could edit
// the entries themselves. Sweep and Unblock never touch the tag.
//
// # Which NACLs
//
// A NACL banshee manages is one carrying a "banshee:" tag (rule metadata,
// a sighting or the VPC CIDR cache). Sweep and List without ids read only
// those (DescribeNetworkAcls with a tag-key filter), so a region-wide
// sweep never touches anyone else's NACL; given ids they read those, but
// still adopt nothing in a NACL banshee does not manage. Removal (Unblock,
// Sweep, an aggregate's leftovers) deletes only banshee's entries at a
// number: the ingress deny, and the egress deny of the same CIDR only
// with nacl.egress; anyone else's entry at the same number stays.
//
// A Manager caches what it reads for one invocation (maxAge bounded), never
// across invocations or globally. Each NACL has one cached state, updated
// in place under its write lock whenever it is read again, so writes made
// after a re-read are what later calls of the same Manager see.
package awsnacl
