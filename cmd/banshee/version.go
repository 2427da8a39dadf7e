package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version overrides the module version when set at build time with
// -ldflags "-X main.version=...".
var version = ""

func init() { register(newVersionCmd) }

// versionInfo is what version prints: the module version (or devel for a
// build from a source tree), the VCS revision and whether the tree had
// uncommitted changes, from the build information Go embeds.
type versionInfo struct {
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Modified bool   `json:"modified"`
	Go       string `json:"go"`
}

func readVersion(bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Version: "devel", Go: runtime.Version()}
	if ok {
		if mv := bi.Main.Version; mv != "" && mv != "(devel)" {
			v.Version = mv
		}
		if bi.GoVersion != "" {
			v.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				v.Revision = s.Value
			case "vcs.modified":
				v.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		v.Version = version
	}
	return v
}

// String is the text line: banshee v1.2.0 (rev 5a78433, go1.26.8) or
// banshee devel (rev 5a78433, modified, go1.26.8).
func (v versionInfo) String() string {
	var parts []string
	if v.Revision != "" {
		parts = append(parts, "rev "+v.Revision[:min(len(v.Revision), 7)])
	} else {
		parts = append(parts, "no VCS revision")
	}
	if v.Modified {
		parts = append(parts, "modified")
	}
	parts = append(parts, v.Go)
	return fmt.Sprintf("banshee %s (%s)", v.Version, strings.Join(parts, ", "))
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and Go release of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := readVersion(debug.ReadBuildInfo())
			return a.emit(v, func(w io.Writer) { fmt.Fprintln(w, v) })
		},
	}
}
