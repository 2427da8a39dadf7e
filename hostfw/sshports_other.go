//go:build !linux

package hostfw

func listeningSSHPorts([]uint16) ([]uint16, error) { return nil, ErrUnsupported }
