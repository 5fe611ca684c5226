package collector

// System details on Windows, macOS and the rest, through gopsutil. Facts
// that do not change are read once at New. Builds (and is tested) on Linux
// too.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/procscope/procscope/aggregator/snapshot"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/host"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
)

// diskTimeout bounds the filesystem part: a hung network share must not
// stall the walk.
const diskTimeout = 5 * time.Second

func (p *gopsutilPlatform) readStatic() snapshot.SystemInfo {
	ctx := context.Background()
	var si snapshot.SystemInfo
	si.OS.Name = runtime.GOOS
	si.OS.Arch = unameArch()
	if hi, err := host.InfoWithContext(ctx); err == nil {
		si.OS.Distro = hi.Platform
		si.OS.Version = hi.PlatformVersion
		si.OS.Kernel = hi.KernelVersion
		if hi.KernelArch != "" {
			si.OS.Arch = hi.KernelArch
		}
		p.bootTime = time.Unix(int64(hi.BootTime), 0)
	}
	if infos, err := cpu.InfoWithContext(ctx); err == nil && len(infos) > 0 {
		si.CPU.Model = infos[0].ModelName
		si.CPU.MaxMHz = infos[0].Mhz
		si.CPU.CurrentMHz = infos[0].Mhz
	}
	if n, err := cpu.CountsWithContext(ctx, false); err == nil {
		si.CPU.PhysicalCores = n
	}
	if n, err := cpu.CountsWithContext(ctx, true); err == nil {
		si.CPU.LogicalThreads = n
	}
	return si
}

func (p *gopsutilPlatform) readMemory(w *Walk) error {
	ctx := context.Background()
	vm, err := mem.VirtualMemoryWithContext(ctx)
	if err != nil {
		return err
	}
	p.memTotal = vm.Total
	w.System.Memory = snapshot.MemoryInfo{TotalBytes: vm.Total, UsedBytes: vm.Total - min(vm.Available, vm.Total), AvailableBytes: vm.Available}
	sw, err := mem.SwapMemoryWithContext(ctx)
	if err != nil {
		return fmt.Errorf("swap: %w", err)
	}
	w.System.Swap = snapshot.SwapInfo{TotalBytes: sw.Total, UsedBytes: sw.Used}
	return nil
}

func (p *gopsutilPlatform) readCPUTimes(w *Walk) (map[string]float64, error) {
	ts, err := cpu.TimesWithContext(context.Background(), false)
	if err != nil {
		return nil, err
	}
	if len(ts) == 0 {
		return nil, errors.New("no cpu times")
	}
	t := ts[0]
	return map[string]float64{
		"user": t.User, "nice": t.Nice, "system": t.System, "idle": t.Idle,
		"iowait": t.Iowait, "irq": t.Irq, "softirq": t.Softirq, "steal": t.Steal,
	}, nil
}

func (p *gopsutilPlatform) readLoad(w *Walk) error {
	l, err := load.AvgWithContext(context.Background())
	if err != nil {
		return err
	}
	w.System.LoadAverage = snapshot.LoadAverage{Load1: l.Load1, Load5: l.Load5, Load15: l.Load15}
	return nil
}

func (p *gopsutilPlatform) readNetwork(w *Walk) error {
	cs, err := net.IOCountersWithContext(context.Background(), true)
	if err != nil {
		return err
	}
	out := make([]NetDevice, 0, len(cs))
	for _, c := range cs {
		out = append(out, NetDevice{Device: c.Name, ReceiveBytes: c.BytesRecv, TransmitBytes: c.BytesSent})
	}
	w.Network = out
	return nil
}

func (p *gopsutilPlatform) readFilesystems(w *Walk) error {
	ctx, cancel := context.WithTimeout(context.Background(), diskTimeout)
	defer cancel()
	parts, err := disk.PartitionsWithContext(ctx, false)
	if err != nil {
		return err
	}
	out := []snapshot.Filesystem{}
	seen := map[string]bool{}
	for _, pt := range parts {
		if seen[pt.Mountpoint] || !keepFilesystem(pt.Mountpoint, pt.Fstype) {
			continue
		}
		seen[pt.Mountpoint] = true
		u, err := disk.UsageWithContext(ctx, pt.Mountpoint)
		if err != nil || u.Total == 0 {
			continue
		}
		out = append(out, snapshot.Filesystem{Mountpoint: pt.Mountpoint, Device: pt.Device, FSType: pt.Fstype, TotalBytes: u.Total, UsedBytes: u.Used, AvailableBytes: u.Free})
	}
	w.System.Filesystems = out
	return nil
}

func (p *gopsutilPlatform) readHost(w *Walk) error {
	bt, err := host.BootTimeWithContext(context.Background())
	if err != nil {
		return err
	}
	p.bootTime = time.Unix(int64(bt), 0)
	w.BootTime = p.bootTime
	w.System.UptimeSec = time.Since(p.bootTime).Seconds()
	return nil
}
