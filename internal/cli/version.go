package cli

import (
	"cmp"
	"runtime/debug"
	"time"

	"github.com/prometheus/common/version"
)

// FillVersion gives the build labels of prometheus/common/version that the
// linker did not set (make build and the Dockerfiles set them with -X) a
// value, so that --version, the start line and *_build_info have no empty
// field after a plain `go build` or `go install`: the module version or
// "devel", and "unknown" for what the binary cannot know. The revision
// needs nothing here: the version package falls back to the vcs.revision
// that go build records (with -buildvcs, in a git checkout).
// main calls it first, before anything reads the labels.
func FillVersion() {
	info, _ := debug.ReadBuildInfo()
	fillVersion(info)
}

func fillVersion(info *debug.BuildInfo) {
	vcsTime := ""
	if info != nil {
		for _, s := range info.Settings {
			if s.Key == "vcs.time" {
				vcsTime = s.Value
			}
		}
	}
	if version.Version == "" {
		version.Version = "devel"
		// `go install module@v1.2.3` records the version; a local build
		// says "(devel)".
		if info != nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
			version.Version = info.Main.Version
		}
	}
	version.Branch = cmp.Or(version.Branch, "unknown")
	version.BuildUser = cmp.Or(version.BuildUser, "unknown")
	if version.BuildDate == "" {
		version.BuildDate = "unknown"
		// The commit's time is the best date a plain build has; in
		// promu's format, as make build writes it.
		if t, err := time.Parse(time.RFC3339, vcsTime); err == nil {
			version.BuildDate = t.UTC().Format("20060102-15:04:05")
		}
	}
}
