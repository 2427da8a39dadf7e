package hostfw

import "syscall"

// childAttr makes a kernel tool die with banshee: killed with -9, banshee
// must not leave an "ipset restore" behind that commits what it has read.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
