//go:build !linux

package hostfw

import "syscall"

func childAttr() *syscall.SysProcAttr { return nil }
