package collector

// Attribution: which systemd unit, container and Kubernetes pod a process
// belongs to, derived from its cgroup path alone. The path is read once
// per process (PID and start time, like the user name): a process can be
// moved to another cgroup, but the runtimes that do so (systemd-run
// --scope, container runtimes) do it before the process does any work.

import (
	"strings"
)

// Attribution is what the cgroup path says about a process; empty fields
// mean the path says nothing of that kind.
type Attribution struct {
	// Cgroup is the cgroup v2 path, or on a v1 host the unified
	// hierarchy's path when mounted, else the cpu controller's.
	Cgroup string
	// Unit is the innermost systemd .service or .scope with the slice
	// directly above it, e.g. "system.slice/nginx.service"; the unit alone
	// when it sits at the root ("init.scope").
	Unit string
	// ContainerID is the 64-hex id of a docker, containerd, CRI-O or podman
	// container.
	ContainerID string
	// PodUID is the Kubernetes pod UID (dashes restored when systemd's
	// cgroup driver wrote them as underscores).
	PodUID string
}

// cgroupPath picks a process's cgroup path from /proc/PID/cgroup: the
// unified ("0::") line, else the v1 line whose controllers include cpu.
// The unified line wins only when it says more than "/": on a hybrid v1
// host it exists but is often empty while the cpu controller's is not.
func cgroupPath(b []byte) string {
	var unified, cpu string
	haveUnified := false
	for len(b) > 0 {
		var line []byte
		line, b = cutLine(b)
		// hierarchy-ID:controller-list:path; the path may contain ':'.
		i := indexByte(line, ':')
		if i < 0 {
			continue
		}
		j := indexByte(line[i+1:], ':')
		if j < 0 {
			continue
		}
		id, ctrls, path := line[:i], line[i+1:i+1+j], line[i+2+j:]
		if string(id) == "0" && len(ctrls) == 0 {
			unified, haveUnified = string(path), true
			continue
		}
		for c := range strings.SplitSeq(string(ctrls), ",") {
			if c == "cpu" {
				cpu = string(path)
			}
		}
	}
	if haveUnified && (unified != "/" || cpu == "") {
		return unified
	}
	return cpu
}

// cutLine splits b at its first newline: the line without it, and the
// rest (nil after the last line).
func cutLine(b []byte) (line, rest []byte) {
	if i := indexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// containerPrefixes are the runtimes' scope and directory prefixes before
// a container id: docker and podman with the systemd cgroup driver
// (docker-ID.scope, libpod-ID.scope), containerd's CRI plugin
// (cri-containerd-ID.scope), CRI-O (crio-ID.scope, crio-ID under
// cgroupfs) and nerdctl. A bare 64-hex directory is docker's and
// containerd's cgroupfs layout (/docker/ID, /kubepods/.../podUID/ID).
var containerPrefixes = []string{"docker-", "cri-containerd-", "crio-", "libpod-", "containerd-", "nerdctl-"}

// attribute derives the unit, container and pod from a cgroup path.
func attribute(path string) Attribution {
	a := Attribution{Cgroup: path}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	for i := len(parts) - 1; i >= 0; i-- {
		p := parts[i]
		if a.Unit == "" && (strings.HasSuffix(p, ".service") || strings.HasSuffix(p, ".scope")) {
			a.Unit = p
			if i > 0 && strings.HasSuffix(parts[i-1], ".slice") {
				a.Unit = parts[i-1] + "/" + p
			}
			if len(a.Unit) > maxUnitLen {
				a.Unit = a.Unit[len(a.Unit)-maxUnitLen:]
			}
		}
		if a.ContainerID == "" {
			a.ContainerID = containerID(p)
		}
		if a.PodUID == "" {
			a.PodUID = podUID(p)
		}
	}
	return a
}

// containerID is the id in one path component, "" if it names none. The
// conmon scopes of CRI-O and podman (crio-conmon-ID.scope) hold the
// monitor, not the container, and do not count.
func containerID(p string) string {
	p = strings.TrimSuffix(p, ".scope")
	for _, pre := range containerPrefixes {
		if rest, ok := strings.CutPrefix(p, pre); ok {
			p = rest
			break
		}
	}
	if isHex64(p) {
		return p
	}
	return ""
}

// isHex64 is a container id: 64 lowercase hex digits.
func isHex64(s string) bool { return isHex(s, 64) }

// isHex: n lowercase hex digits. A static pod's UID is 32 of them (a
// hash of its manifest) rather than a UUID.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// podUID is the pod UID in one component: "pod<uid>" (cgroupfs driver,
// any QoS directory above it) or "kubepods[-<qos>]-pod<uid>.slice"
// (systemd driver, with '-' in the uid written as '_').
func podUID(p string) string {
	if rest, ok := strings.CutSuffix(p, ".slice"); ok {
		if !strings.HasPrefix(rest, "kubepods-") {
			return ""
		}
		i := strings.LastIndex(rest, "-pod")
		if i < 0 {
			return ""
		}
		p = "pod" + strings.ReplaceAll(rest[i+4:], "_", "-")
	}
	uid, ok := strings.CutPrefix(p, "pod")
	if !ok || (!isUUID(uid) && !isHex(uid, 32)) {
		return ""
	}
	return uid
}

// maxUnitLen bounds a unit name: cgroup directories can be made by
// delegated users with any name up to NAME_MAX, twice (slice and unit).
const maxUnitLen = 256

// isUUID accepts the 8-4-4-4-12 hex form Kubernetes gives pod UIDs.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
