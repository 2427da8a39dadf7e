package awsnacl

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/banshee-project/banshee/policy"
)

// instance is what DescribeInstances told about one instance.
type instance struct {
	id       string
	subnetID string
	vpcID    string
	addrs    []netip.Addr
	private  []netip.Addr // addresses inside the VPC's CIDRs
	groups   []string
}

// Resolve turns instance ids (or, without any, a bare subnet id) into
// policy targets: instance → subnet → VPC with the instance's private,
// public and IPv6 addresses. Every instance is looked up in one
// DescribeInstances call. An unknown id is a *NotFoundError (exit 2); an
// instance without a subnet, or in another subnet than subnetID when both
// are given, is a *policy.InputError.
func (m *Manager) Resolve(ctx context.Context, instanceIDs []string, subnetID string) ([]policy.Target, error) {
	if len(instanceIDs) == 0 {
		if subnetID == "" {
			return nil, &policy.InputError{Value: "", Msg: "name an instance or a subnet"}
		}
		st, err := m.state(ctx, subnetID, false)
		if err != nil {
			return nil, err
		}
		return []policy.Target{{SubnetID: subnetID, VPCID: st.vpcID}}, nil
	}
	insts, err := m.lookupInstances(ctx, instanceIDs)
	if err != nil {
		return nil, err
	}
	out := make([]policy.Target, 0, len(insts))
	for _, in := range insts {
		if in.subnetID == "" {
			return nil, &policy.InputError{Value: in.id, Msg: "instance has no subnet (terminated, or not in a VPC): it cannot be blocked at a network ACL"}
		}
		if subnetID != "" && in.subnetID != subnetID {
			return nil, &policy.InputError{Value: in.id, Msg: fmt.Sprintf("instance is in subnet %s, not %s", in.subnetID, subnetID)}
		}
		out = append(out, policy.Target{InstanceID: in.id, SubnetID: in.subnetID, VPCID: in.vpcID, Addresses: slices.Clone(in.addrs)})
	}
	return out, nil
}

// lookupInstances returns the instances by id, from the cache or one
// DescribeInstances call for the missing ones, in the order asked.
func (m *Manager) lookupInstances(ctx context.Context, ids []string) ([]instance, error) {
	var missing []string
	m.mu.Lock()
	for _, id := range ids {
		if _, ok := m.instances[id]; !ok && !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	m.mu.Unlock()
	if len(missing) > 0 {
		p := ec2.NewDescribeInstancesPaginator(m.ec2, &ec2.DescribeInstancesInput{InstanceIds: missing})
		found := map[string]instance{}
		for i := 0; p.HasMorePages() && i < 100; i++ {
			page, err := p.NextPage(ctx)
			if err != nil {
				return nil, classify("describing instances "+strings.Join(missing, ", "), strings.Join(missing, ", "), err)
			}
			for _, r := range page.Reservations {
				for _, in := range r.Instances {
					found[aws.ToString(in.InstanceId)] = instanceFromAWS(in)
				}
			}
		}
		m.mu.Lock()
		for id, in := range found {
			m.instances[id] = in
		}
		m.mu.Unlock()
	}
	out := make([]instance, 0, len(ids))
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		in, ok := m.instances[id]
		if !ok {
			return nil, fmt.Errorf("describing instances: %w", &NotFoundError{Kind: "instance", ID: id})
		}
		out = append(out, in)
	}
	return out, nil
}

func instanceFromAWS(in types.Instance) instance {
	out := instance{id: aws.ToString(in.InstanceId), subnetID: aws.ToString(in.SubnetId), vpcID: aws.ToString(in.VpcId)}
	add := func(s string, private bool) {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		if !slices.Contains(out.addrs, a) {
			out.addrs = append(out.addrs, a)
		}
		if private && !slices.Contains(out.private, a) {
			out.private = append(out.private, a)
		}
	}
	add(aws.ToString(in.PrivateIpAddress), true)
	add(aws.ToString(in.PublicIpAddress), false)
	if a := aws.ToString(in.Ipv6Address); a != "" {
		add(a, true)
	}
	for _, ni := range in.NetworkInterfaces {
		for _, pa := range ni.PrivateIpAddresses {
			add(aws.ToString(pa.PrivateIpAddress), true)
			if pa.Association != nil {
				add(aws.ToString(pa.Association.PublicIp), false)
			}
		}
		for _, a := range ni.Ipv6Addresses {
			add(aws.ToString(a.Ipv6Address), true)
		}
	}
	for _, g := range in.SecurityGroups {
		if id := aws.ToString(g.GroupId); id != "" && !slices.Contains(out.groups, id) {
			out.groups = append(out.groups, id)
		}
	}
	return out
}

// ErrNotOnEC2 marks a LocalIdentity call off EC2 (or with IMDS disabled).
var ErrNotOnEC2 = errors.New("not running on EC2 (instance metadata unavailable)")

// Identity is this instance as IMDS describes it.
type Identity struct {
	InstanceID       string
	Region           string
	AvailabilityZone string
	AccountID        string
	PrivateIP        netip.Addr
}

// LocalIdentity asks the instance metadata service (IMDSv2: a session
// token first) who this instance is, for commands given neither --instance
// nor --subnet. It gives up within a few seconds off EC2 and then returns
// an error wrapping ErrNotOnEC2. AWS_EC2_METADATA_DISABLED=true disables
// it. opts may set imds.Options.Endpoint (tests).
func LocalIdentity(ctx context.Context, opts ...func(*imds.Options)) (Identity, error) {
	if strings.EqualFold(os.Getenv("AWS_EC2_METADATA_DISABLED"), "true") {
		return Identity{}, fmt.Errorf("reading the instance identity: AWS_EC2_METADATA_DISABLED is set: %w", ErrNotOnEC2)
	}
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	o := imds.Options{
		EnableFallback: aws.FalseTernary, // IMDSv2 only: never without a token
		Retryer:        retry.AddWithMaxAttempts(retry.NewStandard(), 2),
	}
	for _, f := range opts {
		f(&o)
	}
	c := imds.New(o)
	doc, err := c.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("reading the instance identity from IMDSv2: %w: %w", ErrNotOnEC2, err)
	}
	id := Identity{
		InstanceID:       doc.InstanceID,
		Region:           doc.Region,
		AvailabilityZone: doc.AvailabilityZone,
		AccountID:        doc.AccountID,
	}
	id.PrivateIP, _ = netip.ParseAddr(doc.PrivateIP)
	if id.InstanceID == "" {
		return Identity{}, fmt.Errorf("reading the instance identity from IMDSv2: no instance id in the document: %w", ErrNotOnEC2)
	}
	return id, nil
}

// dmiFiles are where Linux shows the machine's vendor and UUID; EC2
// instances (Xen and Nitro) say "Amazon EC2" or have a UUID starting with
// "ec2".
var dmiFiles = []string{"/sys/class/dmi/id/sys_vendor", "/sys/class/dmi/id/product_uuid", "/sys/hypervisor/uuid", "/sys/class/dmi/id/board_asset_tag"}

// OnEC2 reports, without any network call, whether this machine looks like
// an EC2 instance, so that commands off EC2 do not wait for IMDS to time
// out before LocalIdentity.
func OnEC2() bool {
	for _, f := range dmiFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		s := strings.ToLower(strings.TrimSpace(string(b)))
		if strings.Contains(s, "amazon ec2") || strings.HasPrefix(s, "ec2") || strings.HasPrefix(s, "i-") {
			return true
		}
	}
	return false
}
