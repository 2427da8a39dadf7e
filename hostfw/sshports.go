package hostfw

import "slices"

// DefaultSSHPort is always protected, whether or not sshd is found.
const DefaultSSHPort = 22

// SSHPorts returns every TCP port whose established sessions are SSH
// sessions to protect: 22, the configured extra ports, and each port a
// root-owned sshd listens on in this network namespace. When the listening
// sockets cannot be read it still returns 22 and the extra ports, with the
// error.
func SSHPorts(extra []uint16) ([]uint16, error) {
	ports := []uint16{DefaultSSHPort}
	for _, p := range extra {
		if p != 0 && !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	found, err := listeningSSHPorts(ports)
	for _, p := range found {
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports, err
}
