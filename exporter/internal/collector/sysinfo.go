package collector

import (
	"regexp"
	"runtime"
)

// Filesystems worth showing are chosen as node_exporter's filesystem
// collector does by default, so the System Details tab and a Grafana disk
// panel fed by node_exporter list the same mounts: pseudo and read-only
// image filesystems are skipped, tmpfs is kept (a full /run or /dev/shm
// breaks a host as surely as a full disk), overlay is skipped (a
// container's root, already counted on its backing disk).
var (
	ignoredMountPoints = regexp.MustCompile(`^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`)
	ignoredFSTypes     = regexp.MustCompile(`^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|devfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|nullfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|erofs|sysfs|tracefs|ramfs|efivarfs)$`)
)

// keepFilesystem says whether a mount is a real filesystem to report.
func keepFilesystem(mountpoint, fstype string) bool {
	return !ignoredMountPoints.MatchString(mountpoint) && !ignoredFSTypes.MatchString(fstype)
}

// unameArch maps Go's GOARCH to the names uname -m prints, used where the
// OS cannot be asked.
func unameArch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "386":
		return "i686"
	case "arm64":
		return "aarch64"
	}
	return runtime.GOARCH
}
