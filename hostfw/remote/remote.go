package remote

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// SSMAPI is the part of the SSM client the driver uses.
type SSMAPI interface {
	SendCommand(ctx context.Context, params *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	ListCommands(ctx context.Context, params *ssm.ListCommandsInput, optFns ...func(*ssm.Options)) (*ssm.ListCommandsOutput, error)
}

// EC2API is the part of the EC2 client the driver uses.
type EC2API interface {
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// Config configures the driver.
type Config struct {
	// Document is the name of banshee's SSM document (env BANSHEE_SSM_DOCUMENT).
	Document string
	// InstanceTag is "key=value": only instances carrying it are targeted
	// (env BANSHEE_INSTANCE_TAG).
	InstanceTag string
	// Timeout is the command's delivery timeout; 0 means 10 minutes.
	Timeout time.Duration
}

// Driver sends host blocks to instances through SSM Run Command.
type Driver struct {
	ssm      SSMAPI
	ec2      EC2API
	doc      string
	tagKey   string
	tagValue string
	timeout  time.Duration
}

var (
	documentRE = lazyRE(`^[a-zA-Z0-9_.:/-]{3,128}$`)
	tagKeyRE   = lazyRE(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,128}$`)
	instanceRE = lazyRE(`^i-[0-9a-f]{8,17}$`)
	keyRE      = lazyRE(`^[0-9a-f]{8,64}$`)
)

// New returns a driver over the given clients. It validates the document
// name and the instance tag.
func New(s SSMAPI, e EC2API, cfg Config) (*Driver, error) {
	if !documentRE().MatchString(cfg.Document) {
		return nil, fmt.Errorf("configure ssm host driver: document name %q is not valid", cfg.Document)
	}
	k, v, ok := strings.Cut(cfg.InstanceTag, "=")
	if !ok || !tagKeyRE().MatchString(k) || len(v) > 256 {
		return nil, fmt.Errorf("configure ssm host driver: instance tag %q is not key=value", cfg.InstanceTag)
	}
	t := cfg.Timeout
	if t <= 0 {
		t = 10 * time.Minute
	}
	return &Driver{ssm: s, ec2: e, doc: cfg.Document, tagKey: k, tagValue: v, timeout: t}, nil
}

// Request is one host-firewall change on a set of instances.
type Request struct {
	Action    Action
	Targets   []netip.Prefix
	TTL       time.Duration // block only
	Reason    string        // cleaned with CleanReason
	Instances []string
	// Key identifies the request across deliveries (hex, 8 to 64 digits,
	// e.g. the alarm state change's key). A command with the same key sent
	// since Since is not sent again. Empty Key: no de-duplication.
	Key   string
	Since time.Time
}

// Sent is one command, sent now or found from an earlier delivery.
type Sent struct {
	CommandID string         `json:"command_id"`
	Instances []string       `json:"instances"`
	Targets   []netip.Prefix `json:"targets"`
	Duplicate bool           `json:"duplicate,omitempty"` // sent by an earlier delivery, not again
}

// Result says what a Run did.
type Result struct {
	Sent []Sent `json:"sent"`
	// Untargeted are requested instances that are not running or do not
	// carry the instance tag: nothing was sent to them.
	Untargeted []string `json:"untargeted,omitempty"`
}

// ErrNoInstances is returned when no requested instance may be targeted.
var ErrNoInstances = errors.New("no requested instance is running with the instance tag")

// Run validates the request, keeps the instances that are running and carry
// the tag, skips what an earlier delivery already sent, and sends the rest
// (targets split so each command's parameter stays within MaxTargetsLen).
func (d *Driver) Run(ctx context.Context, r Request) (Result, error) {
	var res Result
	if r.Action != Block && r.Action != Unblock {
		return res, fmt.Errorf("ssm host %s: unknown action", r.Action)
	}
	if r.Key != "" && !keyRE().MatchString(r.Key) {
		return res, fmt.Errorf("ssm host %s: key %q is not hex", r.Action, r.Key)
	}
	ids := slices.Clone(r.Instances)
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return res, fmt.Errorf("ssm host %s: no instances", r.Action)
	}
	for _, id := range ids {
		if !instanceRE().MatchString(id) {
			return res, fmt.Errorf("ssm host %s: %q is not an instance id", r.Action, id)
		}
	}
	parts := chunks(r.Targets)
	params := make([]map[string][]string, len(parts))
	for i, p := range parts {
		ps, err := Parameters(r.Action, p, r.TTL, r.Reason)
		if err != nil {
			return res, fmt.Errorf("ssm host %s: %w", r.Action, err)
		}
		params[i] = ps
	}
	if len(parts) == 0 {
		return res, fmt.Errorf("ssm host %s: no targets", r.Action)
	}
	tagged, err := d.tagged(ctx, ids)
	if err != nil {
		return res, err
	}
	var targeted []string
	for _, id := range ids {
		if tagged[id] {
			targeted = append(targeted, id)
		} else {
			res.Untargeted = append(res.Untargeted, id)
		}
	}
	if len(targeted) == 0 {
		return res, fmt.Errorf("ssm host %s on %s: %w (tag %s=%s)", r.Action, strings.Join(ids, ","), ErrNoInstances, d.tagKey, d.tagValue)
	}
	var earlier map[string][]ssmtypes.Command
	if r.Key != "" {
		if earlier, err = d.earlier(ctx, r.Since); err != nil {
			return res, err
		}
	}
	for i, p := range parts {
		comment := fmt.Sprintf("banshee %s %s %d", r.Action, r.Key, i)
		todo := targeted
		if r.Key != "" {
			var done []string
			todo, done = remaining(targeted, earlier[comment])
			for _, c := range earlier[comment] {
				if len(done) > 0 {
					res.Sent = append(res.Sent, Sent{CommandID: aws.ToString(c.CommandId), Instances: intersect(c.InstanceIds, done), Targets: p, Duplicate: true})
				}
			}
		}
		if len(todo) == 0 {
			continue
		}
		out, err := d.ssm.SendCommand(ctx, &ssm.SendCommandInput{
			DocumentName:   aws.String(d.doc),
			InstanceIds:    todo,
			Parameters:     params[i],
			Comment:        aws.String(comment),
			TimeoutSeconds: aws.Int32(int32(d.timeout / time.Second)),
		})
		if err != nil {
			return res, fmt.Errorf("ssm host %s: send command %s to %s: %w", r.Action, d.doc, strings.Join(todo, ","), err)
		}
		id := ""
		if out.Command != nil {
			id = aws.ToString(out.Command.CommandId)
		}
		res.Sent = append(res.Sent, Sent{CommandID: id, Instances: todo, Targets: p})
	}
	return res, nil
}

// tagged returns which of ids are running and carry the instance tag.
func (d *Driver) tagged(ctx context.Context, ids []string) (map[string]bool, error) {
	in := &ec2.DescribeInstancesInput{Filters: []ec2types.Filter{
		{Name: aws.String("instance-id"), Values: ids},
		{Name: aws.String("tag:" + d.tagKey), Values: []string{d.tagValue}},
		{Name: aws.String("instance-state-name"), Values: []string{"running"}},
	}}
	ok := map[string]bool{}
	for page := 0; page < 20; page++ {
		out, err := d.ec2.DescribeInstances(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ssm host: check instance tag %s on %s: %w", d.tagKey, strings.Join(ids, ","), err)
		}
		for _, rsv := range out.Reservations {
			for _, inst := range rsv.Instances {
				ok[aws.ToString(inst.InstanceId)] = true
			}
		}
		if aws.ToString(out.NextToken) == "" {
			return ok, nil
		}
		in.NextToken = out.NextToken
	}
	return nil, fmt.Errorf("ssm host: check instance tag: more than 20 pages of instances")
}

// maxListPages bounds the search for earlier deliveries.
const maxListPages = 5

// failed are command states after which a redelivery must send again.
var failed = map[ssmtypes.CommandStatus]bool{
	ssmtypes.CommandStatusFailed:     true,
	ssmtypes.CommandStatusCancelled:  true,
	ssmtypes.CommandStatusCancelling: true,
	ssmtypes.CommandStatusTimedOut:   true,
}

// earlier lists banshee's commands since the given time, by comment.
func (d *Driver) earlier(ctx context.Context, since time.Time) (map[string][]ssmtypes.Command, error) {
	in := &ssm.ListCommandsInput{
		MaxResults: aws.Int32(50),
		Filters:    []ssmtypes.CommandFilter{{Key: ssmtypes.CommandFilterKeyDocumentName, Value: aws.String(d.doc)}},
	}
	if !since.IsZero() {
		in.Filters = append(in.Filters, ssmtypes.CommandFilter{Key: ssmtypes.CommandFilterKeyInvokedAfter, Value: aws.String(since.UTC().Format(time.RFC3339))})
	}
	byComment := map[string][]ssmtypes.Command{}
	for page := 0; page < maxListPages; page++ {
		out, err := d.ssm.ListCommands(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("ssm host: list earlier commands of %s: %w", d.doc, err)
		}
		for _, c := range out.Commands {
			if aws.ToString(c.DocumentName) != d.doc || failed[c.Status] {
				continue
			}
			if cm := aws.ToString(c.Comment); strings.HasPrefix(cm, "banshee ") {
				byComment[cm] = append(byComment[cm], c)
			}
		}
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	return byComment, nil
}

// remaining splits ids into those no earlier command covered and those one did.
func remaining(ids []string, earlier []ssmtypes.Command) (todo, done []string) {
	covered := map[string]bool{}
	for _, c := range earlier {
		for _, id := range c.InstanceIds {
			covered[id] = true
		}
	}
	for _, id := range ids {
		if covered[id] {
			done = append(done, id)
		} else {
			todo = append(todo, id)
		}
	}
	return todo, done
}

func intersect(a, b []string) []string {
	var out []string
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}
