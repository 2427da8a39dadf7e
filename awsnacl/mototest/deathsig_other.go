//go:build !linux

package mototest

import "os/exec"

// setDeathSignal does nothing where the kernel offers no parent-death
// signal; Stop and the test cleanups still kill the server.
func setDeathSignal(*exec.Cmd) {}
