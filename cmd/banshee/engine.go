package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/banshee-project/banshee/cmd/internal/engine"
	"github.com/banshee-project/banshee/cmd/internal/watch"
	"github.com/banshee-project/banshee/policy"
)

// openHost, when set, replaces this machine's firewall (tests).
var openHost func(ctx context.Context) (engine.Host, error)

// engine wires the shared engine for one command: this host's firewall
// (opened on first use, or the probe block started), the network ACLs
// through the SDK's default chain, this instance's identity, and the
// networks of this host no block may touch.
func (a *app) engine() (*engine.Engine, error) {
	cfg, err := a.config()
	if err != nil {
		return nil, err
	}
	return a.engineWith(cfg), nil
}

// engineWith is engine deciding with cfg (restore, at boot, goes on with
// the default policy when the configuration is broken).
func (a *app) engineWith(cfg policy.Config) *engine.Engine {
	return engine.New(engine.Deps{
		Config: cfg,
		Host: func(ctx context.Context) (engine.Host, error) {
			if openHost != nil {
				return openHost(ctx)
			}
			if a.hostProbe != nil {
				fw, err := a.hostProbe()
				if err != nil {
					return nil, err
				}
				return fw, nil
			}
			fw, err := a.firewall(ctx)
			if err != nil {
				return nil, err
			}
			return fw, nil
		},
		Edge: func(ctx context.Context) (engine.Edge, error) {
			m, err := a.naclManager(ctx)
			if err != nil {
				return nil, err
			}
			return m, nil
		},
		Self: func(ctx context.Context) (string, error) {
			id, err := whoAmI(ctx)
			return id.InstanceID, err
		},
		Protected: engine.Local(engine.LocalOptions{
			FindSSHPorts: a.sshPorts, // found only when a command asks
			Warn: func(err error) {
				fmt.Fprintf(a.stderr, "banshee: warning: %v\n", err)
			},
		}),
		Callers: callerAddrs(os.Getenv),
		Offences: engine.FileOffences{
			Path: filepath.Join(a.stateDir, "offences.json"),
			Also: []string{filepath.Join(a.stateDir, watch.OffencesFile)},
		},
	})
}
