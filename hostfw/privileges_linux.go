package hostfw

import (
	"os"
	"strconv"
	"strings"
)

// checkPrivileges fails early, with what is missing, when the process has
// neither root nor CAP_NET_ADMIN.
func checkPrivileges() error {
	if os.Geteuid() == 0 {
		return nil
	}
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil // cannot tell; the tools will say
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			caps, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err == nil && caps&(1<<12) != 0 { // CAP_NET_ADMIN
				return nil
			}
		}
	}
	return ErrNotPermitted
}
