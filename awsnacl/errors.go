package awsnacl

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/aws/smithy-go"
	"github.com/banshee-project/banshee/policy"
)

// ErrNotFound marks an instance, subnet, VPC or network ACL that does not
// exist. Errors that carry it also carry a *policy.InputError naming the id
// (exit 2 in the CLI).
var ErrNotFound = errors.New("not found")

// ErrNoRoom marks a block that does not fit: the NACL's quota for the
// family and direction, the reserved rule-number range or the NACL's tag
// limit is used up. The policy falls back to host scope, aggregates or
// evicts.
var ErrNoRoom = errors.New("no room in the network ACL")

// ErrShadowed marks a deny that would sit after an allow rule matching the
// same traffic, so it would do nothing. The CLI treats it as a refusal.
var ErrShadowed = errors.New("deny would be shadowed by a lower-numbered allow rule")

// errEntryExists is CreateNetworkAclEntry's answer for a taken rule number.
var errEntryExists = errors.New("network ACL entry already exists")

// errEntryGone is the answer for an entry that is no longer there.
var errEntryGone = errors.New("network ACL entry not found")

// NotFoundError says which id does not exist and the AWS code that said so.
type NotFoundError struct {
	Kind string // "instance", "subnet", "network ACL", ...
	ID   string
	Code string // the AWS error code, if any
}

func (e *NotFoundError) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("%s %s not found (%s)", e.Kind, e.ID, e.Code)
	}
	return fmt.Sprintf("%s %s not found", e.Kind, e.ID)
}

// Unwrap lets errors.Is(err, ErrNotFound) and errors.As(err,
// **policy.InputError) match.
func (e *NotFoundError) Unwrap() []error {
	return []error{ErrNotFound, &policy.InputError{Value: e.ID, Msg: e.Kind + " not found"}}
}

// ShadowError names the allow rule that would shadow a deny.
type ShadowError struct {
	Target netip.Prefix
	NACLID string
	Rule   policy.NACLEntry // the allow entry
	Min    int              // the reserved range's lowest number
}

func (e *ShadowError) Error() string {
	return fmt.Sprintf("a deny for %s in %s would come after allow rule %d (%s, %s), which matches the same traffic first: lower the reserved range (nacl.rule_min %d) below %d or remove the allow rule",
		e.Target, e.NACLID, e.Rule.RuleNumber, e.Rule.CIDR, portString(e.Rule.Port), e.Min, e.Rule.RuleNumber)
}

// Unwrap makes errors.Is(err, ErrShadowed) match.
func (e *ShadowError) Unwrap() error { return ErrShadowed }

// TargetError is the failure of one decision of a Block call.
type TargetError struct {
	Target netip.Prefix
	Err    error
}

func (e *TargetError) Error() string { return fmt.Sprintf("blocking %s: %v", e.Target, e.Err) }

// Unwrap returns the cause.
func (e *TargetError) Unwrap() error { return e.Err }

// Failed returns the per-target failures inside an error returned by Block.
func Failed(err error) []*TargetError {
	var out []*TargetError
	var walk func(error)
	walk = func(err error) {
		switch e := err.(type) {
		case nil:
		case *TargetError:
			out = append(out, e)
		case interface{ Unwrap() []error }:
			for _, x := range e.Unwrap() {
				walk(x)
			}
		default:
			walk(errors.Unwrap(err))
		}
	}
	walk(err)
	return out
}

// notFoundCodes maps the AWS codes of a missing resource to its kind.
// InvalidRouteTableID.NotFound is what moto answers for an unknown network
// ACL id in DescribeNetworkAcls; this package calls no route-table API.
var notFoundCodes = map[string]string{
	"InvalidInstanceID.NotFound":    "instance",
	"InvalidInstanceID.Malformed":   "instance",
	"InvalidSubnetID.NotFound":      "subnet",
	"InvalidSubnetID.Malformed":     "subnet",
	"InvalidNetworkAclID.NotFound":  "network ACL",
	"InvalidNetworkAclID.Malformed": "network ACL",
	"InvalidRouteTableID.NotFound":  "network ACL",
	"InvalidVpcID.NotFound":         "VPC",
	"InvalidGroup.NotFound":         "security group",
	"InvalidGroupId.Malformed":      "security group",
	"InvalidPrefixListID.NotFound":  "prefix list",
}

// RetryCodes are the AWS error codes the retryer retries besides the SDK's
// defaults (which already hold RequestLimitExceeded and 5xx statuses).
var RetryCodes = map[string]struct{}{
	"RequestLimitExceeded": {},
	"InternalError":        {},
	"Unavailable":          {},
	"ServiceUnavailable":   {},
}

// errorCode returns the AWS error code of err, or "".
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// classify is the one place that turns AWS error codes into this package's
// errors. op says what was being done; id is the resource asked for.
func classify(op, id string, err error) error {
	if err == nil {
		return nil
	}
	code := errorCode(err)
	if kind, ok := notFoundCodes[code]; ok {
		return fmt.Errorf("%s: %w", op, &NotFoundError{Kind: kind, ID: id, Code: code})
	}
	switch code {
	case "NetworkAclEntryAlreadyExists":
		return fmt.Errorf("%s: %w: %w", op, errEntryExists, err)
	case "InvalidNetworkAclEntry.NotFound":
		return fmt.Errorf("%s: %w: %w", op, errEntryGone, err)
	case "NetworkAclEntryLimitExceeded", "TagLimitExceeded":
		return fmt.Errorf("%s: %w: %w", op, ErrNoRoom, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

func portString(p policy.Port) string {
	if p.Proto == "" {
		return "all traffic"
	}
	return strings.TrimSpace(p.String())
}
