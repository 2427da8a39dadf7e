package event

import (
	"errors"
	"regexp"

	"github.com/banshee-project/banshee/policy"
)

// manual is the wire form of a manual invocation. Unknown fields are errors:
// a misspelt "instance" must not silently widen a block to a subnet.
type manual struct {
	Action    string   `json:"action"`
	Targets   []string `json:"targets"`
	TTL       string   `json:"ttl"`
	Reason    string   `json:"reason"`
	Subnet    string   `json:"subnet"`
	Instances []string `json:"instances"`
	Scope     string   `json:"scope"`
}

var (
	subnetRE   = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	instanceRE = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
)

// MaxManualTargets bounds one manual invocation.
const MaxManualTargets = 1000

func parseManual(raw []byte) (*Manual, error) {
	const shape = ShapeManual
	var w manual
	if err := decodeManual(raw, &w); err != nil {
		return nil, err
	}
	m := &Manual{Action: ManualAction(w.Action), Reason: w.Reason, Subnet: w.Subnet, Instances: w.Instances, Scope: policy.ScopeAuto}
	switch m.Action {
	case ManualBlock, ManualUnblock, ManualPlan:
	default:
		return nil, errorf(shape, "unknown action %q (want block, unblock or plan)", w.Action)
	}
	if len(w.Targets) == 0 {
		return nil, errorf(shape, "targets is empty")
	}
	if len(w.Targets) > MaxManualTargets {
		return nil, errorf(shape, "%d targets, at most %d per invocation", len(w.Targets), MaxManualTargets)
	}
	for _, t := range w.Targets {
		p, err := policy.ParseTarget(t)
		if err != nil {
			return nil, &Error{Shape: shape, Msg: "targets", Err: err}
		}
		m.Targets = append(m.Targets, p)
	}
	if w.TTL != "" {
		d, err := policy.ParseDuration(w.TTL)
		if err != nil || d <= 0 {
			return nil, errorf(shape, "ttl %q is not a positive duration (want e.g. 90s, 2h, 2d)", w.TTL)
		}
		m.TTL = d
	}
	if w.Subnet != "" && !subnetRE.MatchString(w.Subnet) {
		return nil, errorf(shape, "subnet %q is not a subnet id", w.Subnet)
	}
	for _, id := range w.Instances {
		if !instanceRE.MatchString(id) {
			return nil, errorf(shape, "instance %q is not an instance id", id)
		}
	}
	if w.Subnet == "" && len(w.Instances) == 0 {
		return nil, errorf(shape, "name the subnet or the instances the targets attack")
	}
	if w.Scope != "" {
		s, err := policy.ParseScope(w.Scope)
		if err != nil {
			return nil, &Error{Shape: shape, Msg: "scope", Err: err}
		}
		m.Scope = s
	}
	return m, nil
}

func decodeManual(raw []byte, w *manual) error {
	dec := newStrictDecoder(raw)
	if err := dec.Decode(w); err != nil {
		return &Error{Shape: ShapeManual, Msg: "malformed request", Err: err}
	}
	if dec.More() {
		return &Error{Shape: ShapeManual, Msg: "trailing data after the JSON object", Err: errors.New("want one object")}
	}
	return nil
}
