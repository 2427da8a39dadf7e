//go:build !linux

package guard

import "errors"

// ErrUnsupported is returned by Listen on systems without AF_PACKET.
var ErrUnsupported = errors.New("the guard needs Linux packet sockets (AF_PACKET)")

// Socket is a Linux packet socket; on this system Listen always fails.
type Socket struct{}

// Listen fails: packet sockets are Linux only.
func Listen(port uint16) (*Socket, error) { return nil, ErrUnsupported }

// ReadPacket fails: packet sockets are Linux only.
func (s *Socket) ReadPacket() (Packet, error) { return Packet{}, ErrUnsupported }

// Close does nothing.
func (s *Socket) Close() error { return nil }
