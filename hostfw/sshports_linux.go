package hostfw

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// listeningSSHPorts returns the TCP ports of the listening sockets that a
// root-owned sshd process holds, in the calling thread's network namespace:
// sock_diag lists the listening sockets with their inodes (a dump of the
// listening table alone), /proc/PID/fd says which of them belong to sshd.
// A process merely named sshd but not run by root does not count: any user
// could name a process so. Ports in known are protected anyway: when every
// listening port is one of them, the processes are not read.
func listeningSSHPorts(known []uint16) ([]uint16, error) {
	socks, err := diagTCP(1<<tcpListen, nil)
	if err != nil {
		return nil, err
	}
	listen := map[uint32]uint16{} // socket inode -> local port
	news := false
	for _, s := range socks {
		if s.state == tcpListen && s.inode != 0 {
			listen[s.inode] = s.sport
			news = news || !slices.Contains(known, s.sport)
		}
	}
	if !news {
		return nil, nil
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	var ports []uint16
	for _, p := range procs {
		if _, err := strconv.Atoi(p.Name()); err != nil || !isRootSSHD(p.Name()) {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue // gone, or not ours to read
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			ino, ok := strings.CutPrefix(link, "socket:[")
			if !ok {
				continue
			}
			n, err := strconv.ParseUint(strings.TrimSuffix(ino, "]"), 10, 32)
			if err != nil {
				continue
			}
			if port, ok := listen[uint32(n)]; ok && !slices.Contains(ports, port) {
				ports = append(ports, port)
			}
		}
	}
	return ports, nil
}

// isRootSSHD reports whether process pid is an sshd run by root.
func isRootSSHD(pid string) bool {
	comm, err := os.ReadFile(filepath.Join("/proc", pid, "comm"))
	if err != nil {
		return false
	}
	name := strings.TrimSpace(string(comm))
	if name != "sshd" && !strings.HasPrefix(name, "sshd-") {
		return false
	}
	fi, err := os.Stat(filepath.Join("/proc", pid))
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
