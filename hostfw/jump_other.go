//go:build !linux

package hostfw

func nftJumps(Family, string, string) (bool, error) { return false, ErrUnsupported }

func legacyJumps(Family, string) (bool, error) { return false, ErrUnsupported }
