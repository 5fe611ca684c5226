package collector

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAttributeFixtures reads each testdata/cgroup file as /proc/PID/cgroup
// and checks what attribution makes of it: every runtime's layout, cgroup
// v1 and v2.
func TestAttributeFixtures(t *testing.T) {
	t.Parallel()
	const id = "3f1c9a1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7"
	const uid = "8a9b0c1d-2e3f-4a5b-8c7d-9e0f1a2b3c4d"
	const uidU = "8a9b0c1d_2e3f_4a5b_8c7d_9e0f1a2b3c4d"
	cases := map[string]Attribution{
		"v2-systemd-service":          {Unit: "system.slice/nginx.service"},
		"v2-systemd-session-scope":    {Unit: "user-1000.slice/session-3.scope"},
		"v2-user-app-scope":           {Unit: "app.slice/app-firefox-1234.scope"},
		"v2-init-scope":               {Unit: "init.scope"},
		"v2-root":                     {},
		"v2-docker-systemd":           {Unit: "system.slice/docker-" + id + ".scope", ContainerID: id},
		"v2-docker-cgroupfs":          {ContainerID: id},
		"v2-containerd-cgroupfs":      {ContainerID: id},
		"v2-k8s-containerd-burstable": {Unit: "kubepods-burstable-pod" + uidU + ".slice/cri-containerd-" + id + ".scope", ContainerID: id, PodUID: uid},
		"v2-k8s-crio-guaranteed":      {Unit: "kubepods-pod" + uidU + ".slice/crio-" + id + ".scope", ContainerID: id, PodUID: uid},
		"v2-k8s-crio-conmon":          {Unit: "kubepods-besteffort-pod" + uidU + ".slice/crio-conmon-" + id + ".scope", PodUID: uid},
		"v2-k8s-static-pod":           {ContainerID: id, PodUID: "0123456789abcdef0123456789abcdef"},
		"v2-podman-systemd":           {Unit: "machine.slice/libpod-" + id + ".scope", ContainerID: id},
		"v2-podman-rootless":          {Unit: "user.slice/libpod-" + id + ".scope", ContainerID: id},
		"v2-hostile-unit":             {Unit: "system.slice/evil\x1b[31m\"<script>.service"},
		"v1-docker-cgroupfs":          {ContainerID: id},
		"v1-k8s-cgroupfs-besteffort":  {ContainerID: id, PodUID: uid},
		"v1-k8s-cgroupfs-guaranteed":  {ContainerID: id, PodUID: uid},
		"v1-systemd-service":          {Unit: "system.slice/cron.service"},
		"v1-hybrid-unified":           {Unit: "system.slice/ssh.service"},
		"v1-hybrid-empty-unified":     {Unit: "system.slice/docker-" + id + ".scope", ContainerID: id},
		"v1-cpu-separate":             {},
	}
	files, err := filepath.Glob("testdata/cgroup/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(cases) {
		t.Errorf("%d fixtures, %d cases: every fixture needs a case", len(files), len(cases))
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b, err := os.ReadFile(filepath.Join("testdata/cgroup", name))
			if err != nil {
				t.Fatal(err)
			}
			got := attribute(cgroupPath(b))
			got.Cgroup = ""
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestCgroupPath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, want string }{
		{"0::/a.slice/b.service\n", "/a.slice/b.service"},
		{"0::/a:b\n", "/a:b"}, // a colon in the path is part of it
		{"4:cpu,cpuacct:/x\n0::/\n", "/x"},
		{"4:cpuacct,cpu:/y\n", "/y"},
		{"4:cpuset:/z\n", ""},
		{"garbage\n\n:\n", ""},
		{"", ""},
	} {
		if got := cgroupPath([]byte(c.in)); got != c.want {
			t.Errorf("cgroupPath(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestAttributeBoundsUnit(t *testing.T) {
	t.Parallel()
	long := "/s.slice/"
	for range 600 {
		long += "x"
	}
	long += ".service"
	if a := attribute(long); len(a.Unit) != maxUnitLen {
		t.Errorf("unit of %d bytes, want %d", len(a.Unit), maxUnitLen)
	}
}
