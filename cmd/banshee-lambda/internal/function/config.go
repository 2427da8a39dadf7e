package function

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/banshee-project/banshee/policy"
)

// ParamsAPI is the part of the SSM client the config loader uses.
type ParamsAPI interface {
	GetParameter(ctx context.Context, params *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error)
}

// ConfigTTL is how long a loaded configuration serves warm invocations.
const ConfigTTL = time.Minute

// ConfigSource loads banshee's configuration from the SSM parameter named
// by BANSHEE_CONFIG_PARAMETER (JSON, as the Terraform module writes it), or
// returns the defaults when no parameter is named. It caches for ConfigTTL.
type ConfigSource struct {
	ssm   ParamsAPI
	name  string
	now   func() time.Time
	mu    sync.Mutex
	cfg   policy.Config
	until time.Time
}

// NewConfigSource returns a source for the named parameter ("" for the
// defaults).
func NewConfigSource(api ParamsAPI, name string) *ConfigSource {
	return &ConfigSource{ssm: api, name: name, now: time.Now}
}

// Load returns the configuration.
func (c *ConfigSource) Load(ctx context.Context) (policy.Config, error) {
	if c.name == "" {
		return policy.Default(), nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now().Before(c.until) {
		return c.cfg, nil
	}
	out, err := c.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(c.name), WithDecryption: aws.Bool(true)})
	if err != nil {
		return policy.Config{}, fmt.Errorf("load config parameter %s: %w", c.name, err)
	}
	if out.Parameter == nil {
		return policy.Config{}, fmt.Errorf("load config parameter %s: no value", c.name)
	}
	cfg, err := policy.ParseConfig([]byte(aws.ToString(out.Parameter.Value)))
	if err != nil {
		return policy.Config{}, fmt.Errorf("load config parameter %s: %w", c.name, err)
	}
	c.cfg, c.until = cfg, c.now().Add(ConfigTTL)
	return cfg, nil
}
